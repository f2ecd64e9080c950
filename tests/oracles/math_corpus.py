#!/usr/bin/python3
"""math_corpus.py SEED N - N seeded (answer, solution) pairs for math-check, as JSON lines
{"answer", "solution", "expect", "kind"}: "expect" is whether the two final answers are equal by
construction, "kind" the normalisation or value form the pair exercises. Every kind comes up
(they are drawn round-robin), half the pairs of each kind equal and half not.

The answer is written one way (a surface form: \\dfrac, $...$, \\text{ unit}, degrees, percent,
thousands separators, \\left(...\\right), "x = ...") inside one of the extraction contexts (last
\\boxed{}, GSM8K "#### X", "The answer is X.", a last number in prose); the solution another way."""
import math
import random
import sys
from fractions import Fraction


def wrap(rng, ans, numeric):
    """Put a final answer into a text the way a model or a dataset writes it."""
    ctx = ["boxed", "boxed2", "gsm", "answer_is"] + (["last_number"] if numeric else [])
    c = rng.choice(ctx)
    if c == "boxed":
        return "We compute the value step by step, so the result is $\\boxed{%s}$." % ans
    if c == "boxed2":  # an earlier boxed value and nested braces: the last complete one counts
        return "First we get \\boxed{17} for the wrong case. Correcting it: \\boxed{%s}" % ans
    if c == "gsm":
        return "Adding 3 and 4 gives 7 groups.\n#### %s" % ans
    if c == "answer_is":
        return "After simplifying 12 terms, The answer is %s." % ans
    return "There were 12 boxes at first, and in the end we have %s left" % ans


def fmt_int(rng, n, allow_sep=True):
    if allow_sep and abs(n) >= 1000 and rng.random() < 0.6:
        return "{:,}".format(n)
    return str(n)


def frac_forms(rng, f):
    a, b = f.numerator, f.denominator
    sign = "-" if a < 0 else ""
    a = abs(a)
    forms = ["%s\\frac{%d}{%d}" % (sign, a, b), "%s\\dfrac{%d}{%d}" % (sign, a, b), "%s\\tfrac{%d}{%d}" % (sign, a, b),
             "%s%d/%d" % (sign, a, b), "\\frac{%s%d}{%d}" % (sign, a, b)]
    if a < 10 and b < 10:
        forms.append("%s\\frac%d%d" % (sign, a, b))
    if 1000 % b == 0 or b in (2, 4, 5, 8, 10, 16, 20, 25):
        forms.append(str(float(f)))
    return rng.choice(forms)


def gen_kind(rng, kind, equal):
    """(answer text, solution text, numeric-enough-for-last-number)"""
    if kind == "integer":
        n = rng.randint(-50, 5000)
        m = n if equal else n + rng.choice([-2, -1, 1, 3, 10])
        return fmt_int(rng, n), fmt_int(rng, m, False), True
    if kind == "thousands":
        n = rng.randint(1000, 9999999)
        m = n if equal else n + rng.choice([1, 10, 1000])
        return "{:,}".format(n), str(m), False  # "1,234" in prose would be cut only as GSM text
    if kind == "decimal":
        n = rng.randint(1, 9999) / 100
        m = n if equal else n + 0.01
        return ("%.2f" % n), ("%g" % m), True
    if kind == "dollars":
        n = rng.randint(1, 999) + rng.choice([0, 0.5, 0.25, 0.9])
        m = n if equal else n + 1
        a = rng.choice(["\\$%.2f", "$%.2f", "%.2f\\text{ dollars}"]) % n
        return a, "%g" % m, False
    if kind == "fraction":
        f = Fraction(rng.randint(-20, 20) or 1, rng.randint(2, 12))
        g = f if equal else f + Fraction(1, rng.randint(2, 9))
        return frac_forms(rng, f), frac_forms(rng, g), False
    if kind == "radical":
        k, n = rng.randint(2, 6), rng.choice([2, 3, 5, 6, 7])
        a = "%d\\sqrt{%d}" % (k, n)
        b = rng.choice(["\\sqrt{%d}" % (k * k * n), "\\sqrt{%d}\\cdot %d" % (n, k), "%d\\sqrt%d" % (k, n)])
        if not equal:
            b = "\\sqrt{%d}" % (k * k * n + 1)
        return a, b, False
    if kind == "cuberoot":
        k = rng.randint(2, 5) * rng.choice([1, -1])
        a = "\\sqrt[3]{%d}" % (k ** 3)
        return a, str(k if equal else k + 1), False
    if kind == "pi":
        k, d = rng.randint(1, 9), rng.choice([1, 2, 3, 4, 6])
        a = rng.choice(["\\frac{%d\\pi}{%d}" % (k, d), "\\frac{%d}{%d}\\pi" % (k, d), "%d\\pi/%d" % (k, d)])
        kk = k if equal else k + 1
        b = rng.choice(["\\frac{%d\\pi}{%d}" % (kk * 2, d * 2), "%d\u03c0/%d" % (kk, d), "\\pi\\cdot\\frac{%d}{%d}" % (kk, d)])
        return a, b, False
    if kind == "degrees":
        n = rng.choice([30, 45, 60, 90, 120, 135])
        a = rng.choice(["%d^\\circ", "%d^{\\circ}", "%d\u00b0", "%d\\degree"]) % n
        return a, str(n if equal else n + 15), False
    if kind == "percent":
        n = rng.randint(1, 99)
        a = rng.choice(["%d\\%%", "%d%%"]) % n
        return a, str(n if equal else n + 5), False
    if kind == "text_unit":
        n = rng.randint(2, 500)
        a = rng.choice(["%d\\text{ cm}", "%d \\text{ inches}", "%d\\mbox{ meters}", "%d\\text{ square units}"]) % n
        return a, str(n if equal else n * 2), False
    if kind == "text_word":
        w = rng.choice(["Tuesday", "(C)", "even", "Bob"])
        other = {"Tuesday": "Monday", "(C)": "(D)", "even": "odd", "Bob": "Alice"}[w]
        return "\\text{%s}" % w, ("\\textbf{%s}" % w) if equal else other, False
    if kind == "tuple":
        x, y = rng.randint(-9, 9), Fraction(rng.randint(1, 9), rng.randint(1, 4))
        a = "(%d, %s)" % (x, frac_forms(rng, y))
        b = rng.choice(["\\left( %d, %s \\right)", "(%d,%s)"]) % (x, frac_forms(rng, y))
        if not equal:
            b = "(%s, %d)" % (frac_forms(rng, y), x) if y != x else "(%d, %d)" % (x, x + 1)
        return a, b, False
    if kind == "interval":
        lo, hi = rng.randint(-9, 0), rng.randint(1, 9)
        a = rng.choice(["[%d, %d)" % (lo, hi), "\\left[ %d, %d \\right)" % (lo, hi), "(-\\infty, %d]" % hi])
        if a.startswith("(-"):
            b = "(-\\infty,%d]" % hi if equal else "(-\\infty, %d)" % hi
        else:
            b = "[%d,%d)" % (lo, hi) if equal else "(%d, %d)" % (lo, hi)
        return a, b, False
    if kind == "set":
        v = rng.sample(range(-9, 10), 3)
        a = "\\{%s\\}" % ", ".join(map(str, v))
        w = list(v)
        rng.shuffle(w)
        if not equal:
            w[0] += 20
        return a, "\\left\\{%s\\right\\}" % ",".join(map(str, w)), False
    if kind == "list":
        v = rng.sample(range(-9, 10), 2)
        w = list(reversed(v)) if equal else [v[0], v[1] + 1]
        return "x = %d, %d" % tuple(v), "%d, %d" % tuple(w), False
    if kind == "polynomial":
        p, q = rng.randint(-5, 5), rng.randint(-5, 5)
        v = rng.choice("xtn")
        a = "(%s%+d)(%s%+d)" % (v, p, v, q)
        b2, c = p + q, p * q
        b = "%s^2%+d%s%+d" % (v, b2, v, c) if equal else "%s^2%+d%s%+d" % (v, b2, v, c + 1)
        return a, b.replace("+0%s" % v, "").replace("+0", ""), False
    if kind == "power":
        v = rng.choice("xy")
        k = rng.randint(2, 4)
        a = "%s^{%d}\\cdot %s" % (v, k, v)
        return a, "%s^%d" % (v, k + 1 if equal else k + 2), False
    if kind == "assignment":
        n = rng.randint(-30, 30)
        return "x = %d" % n, "%d" % (n if equal else -n - 1), False
    raise ValueError(kind)


KINDS = ["integer", "thousands", "decimal", "dollars", "fraction", "radical", "cuberoot", "pi", "degrees",
         "percent", "text_unit", "text_word", "tuple", "interval", "set", "list", "polynomial", "power",
         "assignment"]


def main():
    seed, n = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    import json
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        equal = (i // len(KINDS)) % 2 == 0
        a, s, numeric = gen_kind(rng, kind, equal)
        if rng.random() < 0.5:
            a, s = s, a
        ans = wrap(rng, a, numeric and "," not in a)
        sol = wrap(rng, s, False)
        print(json.dumps({"answer": ans, "solution": sol, "expect": equal, "kind": kind}, ensure_ascii=False))


if __name__ == "__main__":
    main()
