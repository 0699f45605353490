"""A reproducible synthetic loan book and its borrowers, for the demo and the tests.

Loans look like a Chinese consumer microfinance book: 3,000-50,000 yuan,
12-24 % a year, 6-24 months, mostly equal installments, some private-lending
contracts under the 4 x LPR cap. Each borrower follows one profile:

- ``on_time``: pays every installment on its due date;
- ``late``: pays each installment 3-45 days late, arrears and penalties included;
- ``promiser``: misses, promises to pay when collectors call, keeps 60 % of promises;
- ``payoff``: pays on time, then pays the whole loan off early;
- ``defaulter``: pays a few installments, then stops for good.

Everything is drawn from one seeded ``random.Random``: the same seed gives the
same book and the same behaviour, so two demo runs give the same figures.

Each borrower is a realistic but invented person (``make_person``): a
Chinese name, a national id with a real region code, an adult birth date and
a valid GB 11643 check digit, a mainland mobile number, an address, and for
some a guarantor. They are drawn from a generator of their own (seeded by
the seed and the loan's number), so adding them changed no loan or behaviour
of an existing seed. The demo books them through ``flows.handlers.loans``, so
their personal data is stored encrypted and shown masked, as a real book's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from states.borrower import BorrowerDetails, check_character
from states.caps import CapRegime
from states.defaults import DEFAULT_TIMEZONE
from states.loan import LoanTerms
from states.money import DayCount
from states.schedule import RepaymentMethod, due_dates

PROFILES = (("on_time", 70), ("late", 12), ("promiser", 7), ("payoff", 3), ("defaulter", 8))

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN_NAMES = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国志俊浩宇欣怡涵梓轩雨桐思远文博佳琪晨阳婷雪慧颖倩琳晓燕"
# (province code, province, capital): national ids use the capital's districts 02-04
PROVINCES = (
    ("11", "北京市", ""), ("12", "天津市", ""), ("13", "河北省", "石家庄市"), ("14", "山西省", "太原市"),
    ("15", "内蒙古自治区", "呼和浩特市"), ("21", "辽宁省", "沈阳市"), ("22", "吉林省", "长春市"),
    ("23", "黑龙江省", "哈尔滨市"), ("31", "上海市", ""), ("32", "江苏省", "南京市"), ("33", "浙江省", "杭州市"),
    ("34", "安徽省", "合肥市"), ("35", "福建省", "福州市"), ("36", "江西省", "南昌市"), ("37", "山东省", "济南市"),
    ("41", "河南省", "郑州市"), ("42", "湖北省", "武汉市"), ("43", "湖南省", "长沙市"), ("44", "广东省", "广州市"),
    ("45", "广西壮族自治区", "南宁市"), ("46", "海南省", "海口市"), ("50", "重庆市", ""), ("51", "四川省", "成都市"),
    ("52", "贵州省", "贵阳市"), ("53", "云南省", "昆明市"), ("54", "西藏自治区", "拉萨市"), ("61", "陕西省", "西安市"),
    ("62", "甘肃省", "兰州市"), ("63", "青海省", "西宁市"), ("64", "宁夏回族自治区", "银川市"),
    ("65", "新疆维吾尔自治区", "乌鲁木齐市"),
)
DISTRICTS = ("02", "03", "04")
DISTRICT_NAMES = ("城东区", "城西区", "高新区")
BIRTH_DAYS = 15_000  # born 1962-01-01 .. 2003-01-25: adults on any loan from 2021-01-25
STREETS = ("人民路", "解放路", "建设路", "和平路", "新华路", "长江路", "黄河路", "朝阳路", "滨江路", "文化路", "光明路", "幸福路", "青年路")
MOBILE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155", "156", "157",
    "158", "159", "166", "173", "176", "177", "180", "181", "182", "183", "185", "186", "187", "188", "189", "199",
)


@dataclass
class Borrower:
    case_id: str
    profile: str
    terms: LoanTerms
    person: BorrowerDetails | None = None
    # day -> what happens: "pay" (everything due), "payoff", ("promise", promised_on)
    plan: dict[date, list[object]] = field(default_factory=dict)

    def on(self, day: date, action: object) -> None:
        self.plan.setdefault(day, []).append(action)


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([name for name, _ in weighted], weights=[w for _, w in weighted])[0]


def make_terms(rng: random.Random, n: int, disbursed_on: date) -> LoanTerms:
    principal = Decimal(rng.choice([3, 5, 8, 10, 12, 15, 20, 30, 50])) * 1000 + Decimal(rng.randrange(0, 10)) * 100
    private = rng.random() < 0.10
    rate = Decimal(rng.choice(["0.12", "0.15", "0.18", "0.18", "0.2", "0.22", "0.2399"]))
    method = RepaymentMethod(_pick(rng, (("equal_installment", 65), ("equal_principal", 25), ("interest_first", 10))))
    return LoanTerms(
        contract_no=f"MF{disbursed_on:%Y%m}-{n:06d}",
        borrower_id=f"B{rng.randrange(10**9):09d}",
        principal=principal,
        annual_rate=rate,
        term_months=rng.choice([6, 12, 12, 12, 18, 24]),
        repayment_method=method,
        disbursed_on=disbursed_on,
        first_due_on=_next_month(disbursed_on),
        day_count=DayCount.ACT_365 if rng.random() < 0.2 else DayCount.ACT_360,
        compound_interest=rng.random() < 0.2,
        late_fee=Decimal(rng.choice(["0", "0", "0", "30", "50"])),
        cap_regime=CapRegime.PRIVATE if private else CapRegime.LICENSED,
    )


def make_person(seed: int, borrower_number: int) -> BorrowerDetails:
    """An invented adult borrower, valid in every field and realistic in form.

    The national id is built from ``borrower_number`` one-to-one (sequence
    digits, birth date, region), so two borrower numbers never share one; the
    rest is drawn from a generator seeded by the seed and the number, so one
    borrower with two loans is the same person on both.
    """
    rng = random.Random(f"{seed}:person:{borrower_number}")
    rest, sequence = divmod(borrower_number, 999)
    rest, birth_day = divmod(rest, BIRTH_DAYS)
    province, district = divmod(rest % (len(PROVINCES) * len(DISTRICTS)), len(DISTRICTS))
    code, province_name, capital = PROVINCES[province]
    born = date(1962, 1, 1) + timedelta(days=birth_day)
    first17 = f"{code}01{DISTRICTS[district]}{born:%Y%m%d}{sequence + 1:03d}"
    mobile = lambda: rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"  # noqa: E731
    given = "".join(rng.choice(GIVEN_NAMES) for _ in range(rng.choice((1, 2, 2))))
    flat = f"{rng.randint(1, 30)}栋{rng.randint(1, 6)}单元{rng.randint(1, 30)}{rng.randint(1, 4):02d}室"
    guarantor = rng.random() < 0.3
    phone = mobile()
    guarantor_phone = mobile() if guarantor else None
    while guarantor_phone == phone:
        guarantor_phone = mobile()
    return BorrowerDetails(
        borrower_name=rng.choice(SURNAMES) + given,
        national_id=first17 + check_character(first17),
        phone=phone,
        address=f"{province_name}{capital}{DISTRICT_NAMES[district]}{rng.choice(STREETS)}{rng.randint(1, 999)}号{flat}",
        guarantor_name=rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES) + rng.choice(GIVEN_NAMES) if guarantor else None,
        guarantor_phone=guarantor_phone,
        timezone="Asia/Urumqi" if code == "65" else DEFAULT_TIMEZONE,
    )


def _next_month(day: date) -> date:
    return due_dates(day, 2)[1]


def make_portfolio(size: int, start: date, seed: int = 7, seasoned_days: int = 60, new_days: int = 60) -> list[Borrower]:
    """``size`` loans: disbursed over the ``seasoned_days`` before ``start`` (a seasoned book the
    lender brings along, with its payment history) and the ``new_days`` after it."""
    rng = random.Random(seed)
    borrowers: list[Borrower] = []
    for n in range(1, size + 1):
        disbursed_on = start + timedelta(days=rng.randrange(-seasoned_days, new_days))
        terms = make_terms(rng, n, disbursed_on)
        person = make_person(seed, int(terms.borrower_id[1:]))
        borrower = Borrower(f"CF{n:07d}", _pick(rng, PROFILES), terms, person)
        _plan(rng, borrower)
        borrowers.append(borrower)
    return borrowers


def _plan(rng: random.Random, b: Borrower) -> None:
    dues = [i.due_on for i in b.terms.schedule]
    if b.profile == "on_time":
        for d in dues:
            b.on(d, "pay")
    elif b.profile == "late":
        for d in dues:
            b.on(d + timedelta(days=rng.randint(3, 45)), "pay")
    elif b.profile == "payoff":
        stop = rng.randint(1, max(1, len(dues) - 1))
        for d in dues[:stop]:
            b.on(d, "pay")
        b.on(dues[stop - 1] + timedelta(days=rng.randint(3, 20)), "payoff")
    elif b.profile == "promiser":
        for d in dues:
            asked = d + timedelta(days=rng.randint(5, 12))
            promised_on = asked + timedelta(days=rng.randint(2, 10))
            b.on(asked, ("promise", promised_on))
            if rng.random() < 0.6:
                b.on(promised_on, "pay")
            elif rng.random() < 0.5:
                b.on(promised_on + timedelta(days=rng.randint(20, 60)), "pay")
    elif b.profile == "defaulter":
        for d in dues[: rng.randint(0, 3)]:
            b.on(d, "pay")


def index_by_day(borrowers: list[Borrower]) -> dict[date, list[tuple[str, object]]]:
    by_day: dict[date, list[tuple[str, object]]] = {}
    for b in borrowers:
        for day, actions in b.plan.items():
            by_day.setdefault(day, []).extend((b.case_id, a) for a in actions)
    return by_day
