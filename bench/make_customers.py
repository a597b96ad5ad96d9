"""Write a deterministic CSV of N customers for imports and benchmarks.

    python bench/make_customers.py 1000000 /tmp/customers-1m.csv

Customer i has the mobile number 138xxxxxxxx (i zero-padded to 8 digits), so benchmarks
can pick known callers without reading the file back.
"""

from __future__ import annotations

import random
import sys

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰"
EN_FAMILY = ["Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Thomas", "Roberts", "Walker"]
EN_GIVEN = ["John", "Mary", "David", "Sarah", "James", "Emma", "Peter", "Anna"]
MODELS = {"appliances": ["Microwave M3", "Rice cooker R2", "Fridge F9", "Washer W7"],
          "mobile": ["P50", "P60", "Nova 12"], "office": ["Printer X2", "Copier C5"]}


def mobile_number(i: int) -> str:
    return f"138{i:08d}"


def rows(n: int, seed: int = 1):
    rnd = random.Random(seed)
    for i in range(n):
        if rnd.random() < 0.9:
            fam, giv, lang = rnd.choice(SURNAMES), "".join(rnd.choices(GIVEN, k=rnd.randint(1, 2))), "zh"
            title = rnd.choice(["先生", "女士"])
        else:
            fam, giv, lang = rnd.choice(EN_FAMILY), rnd.choice(EN_GIVEN), "en"
            title = rnd.choice(["Mr", "Ms", "Dr"])
        phones = mobile_number(i)
        if rnd.random() < 0.2:
            phones += f";139{i:08d}"
        prods = []
        for line in rnd.sample(list(MODELS), k=rnd.randint(0, 2)):
            prods.append(f"{line}:{rnd.choice(MODELS[line])}:20{rnd.randint(20, 26)}-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)}")
        vip = "yes" if rnd.random() < 0.05 else "no"
        yield f"{phones},{fam},{giv},{title},{lang},{vip},,,{';'.join(prods)}\n"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    out = sys.argv[2] if len(sys.argv) > 2 else "customers.csv"
    with open(out, "w", encoding="utf-8") as fh:
        fh.write("phones,family_name,given_name,title,language,vip,dealer,email,products\n")
        fh.writelines(rows(n))


if __name__ == "__main__":
    main()
