-- collectflow on PostgreSQL: the application's role owns nothing.
--
-- Run migrations as the schema's owner (collectflow db upgrade with the owner's URL), then
-- grant the application's login role (COLLECTFLOW_DATABASE_URL of every worker) only this.
-- Not owning the tables, it cannot disable or drop the append-only triggers, truncate, or
-- alter them; the triggers refuse UPDATE and DELETE of history to everyone.
-- Replace :schema and :role (e.g. with psql -v, or by hand).
GRANT USAGE ON SCHEMA :schema TO :role;
GRANT SELECT ON ALL TABLES IN SCHEMA :schema TO :role;
GRANT INSERT ON :schema.events, :schema.payments, :schema.loans, :schema.borrowers, :schema.cases,
    :schema.business_days, :schema.policies, :schema.credit_reports TO :role;
GRANT UPDATE ON :schema.cases, :schema.business_days, :schema.borrowers TO :role;
GRANT INSERT, UPDATE ON :schema.close_batches TO :role;  -- the close's leases (claim, renew, done)
GRANT INSERT, UPDATE ON :schema.operators TO :role;
GRANT INSERT ON :schema.operator_changes TO :role;  -- the roster's history (append-only)
GRANT INSERT ON :schema.agency_changes, :schema.agency_commissions TO :role;
GRANT INSERT, UPDATE ON :schema.agencies, :schema.placements TO :role;
GRANT INSERT, UPDATE ON :schema.key_rotations TO :role;  -- keys rotate (a row only goes running -> done)
GRANT INSERT, UPDATE ON :schema.daily_charges, :schema.daily_event_counts, :schema.stage_moves, :schema.daily_recoveries TO :role;  -- the reports' totals (upserts)
GRANT INSERT, UPDATE ON :schema.roll_rate_memos TO :role;  -- the roll rates' kept counts (a report keeps them once counted)
GRANT INSERT, DELETE ON :schema.verified_cases TO :role;  -- verify --incremental's checkpoints (one lost costs a replay)
GRANT USAGE ON ALL SEQUENCES IN SCHEMA :schema TO :role;
