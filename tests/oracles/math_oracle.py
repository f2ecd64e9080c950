#!/usr/bin/python3
"""math_oracle.py - the reference for `salign math-check`: the same rules (src/mathcheck.h), written
independently in Python, with SymPy (Debian python3-sympy) deciding equality by value.

stdin: JSON lines {"answer": TEXT, "solution": TEXT, ...}; stdout: one line per input
{"correct", "answer_extracted", "solution_extracted", "answer_normalized", "solution_normalized"}.

Extraction and normalisation follow the rules as documented; the comparison is SymPy's: the
normalised LaTeX is rewritten to SymPy syntax (\\frac{a}{b} -> ((a)/(b)), \\sqrt -> sqrt / real_root,
^ -> **, \\pi -> pi, \\infty -> oo) and parsed with implicit multiplication; constants are compared
with 50-digit evaluation within a relative 1e-9, expressions in one variable symbolically
(simplify(a - b) == 0)."""
import json
import re
import sys

import sympy
from sympy.parsing.sympy_parser import implicit_multiplication, parse_expr, standard_transformations

# ---- extraction ----


def match_brace(s, i):
    """Index after the '}' closing the '{' at s[i]; None if it never closes. \\{ \\} \\\\ are text."""
    depth, k = 0, i
    while k < len(s):
        if s[k] == "\\" and k + 1 < len(s) and s[k + 1] in "{}\\":
            k += 2
            continue
        if s[k] == "{":
            depth += 1
        elif s[k] == "}":
            depth -= 1
            if depth == 0:
                return k + 1
        k += 1
    return None


def extract_boxed(t):
    best = None
    for m in re.finditer(r"\\(boxed|fbox)(?![A-Za-z])", t):
        j = m.end()
        while j < len(t) and t[j] == " ":
            j += 1
        if j < len(t) and t[j] == "{":
            end = match_brace(t, j)
            if end is not None:
                best = t[j + 1:end - 1]
        elif j > m.end():
            k = re.match(r"[^\s$]*", t[j:]).end()
            if k:
                best = t[j:j + k]
    return best.strip() if best is not None else None


def after_last(t, marker, ci):
    idx = [m.start() for m in re.finditer("(?=" + re.escape(marker) + ")", t, re.I if ci else 0)]
    if not idx:
        return None
    s = t[idx[-1] + len(marker):]
    if ci:
        s = s.lstrip(" \t:")
    s = s.split("\n", 1)[0].strip()
    return s or None


PLAIN = re.compile(r"\d+(\.\d+)?|\.\d+")
THOUSANDS = re.compile(r"\d{1,3}(,\d{3})+(\.\d+)?")


def extract_last_number(t):
    best = None
    for m in re.finditer(r"(?:\d|\.(?=\d))[\d,.]*", t):
        run = m.group(0).rstrip(",.")
        neg = m.start() > 0 and t[m.start() - 1] == "-"
        if "," in run and not THOUSANDS.fullmatch(run):
            for n, piece in enumerate(run.split(",")):
                if PLAIN.fullmatch(piece):
                    best = ("-" if n == 0 and neg else "") + piece
        elif "," in run or PLAIN.fullmatch(run):
            best = ("-" if neg else "") + run
    return best


def extract(t):
    for r in (extract_boxed(t), after_last(t, "####", False), after_last(t, "the answer is", True)):
        if r is not None:
            return r
    return extract_last_number(t)


# ---- normalisation ----


def brace_arg(s, i, out):
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return i
    if s[i] == "{":  # the content is processed too: \\frac{\\sqrt3}{2}
        end = match_brace(s, i)
        if end is None:
            out.append("{" + brace_args(s[i + 1:]))
            return len(s)
        out.append("{" + brace_args(s[i + 1:end - 1]) + "}")
        return end
    if s[i] == "\\":
        m = re.match(r"\\([A-Za-z]+|.)", s[i:], re.S)
        arg = m.group(0)
    else:
        arg = s[i]
    out.append("{" + arg + "}")
    return i + len(arg)


def brace_args(s):
    out, i = [], 0
    while i < len(s):
        if re.match(r"\\frac(?![A-Za-z])", s[i:]):
            out.append("\\frac")
            i = brace_arg(s, i + 5, out)
            i = brace_arg(s, i, out)
        elif re.match(r"\\sqrt(?![A-Za-z])", s[i:]):
            out.append("\\sqrt")
            i += 5
            while i < len(s) and s[i] == " ":
                i += 1
            if i < len(s) and s[i] == "[":
                e = s.find("]", i)
                e = len(s) if e < 0 else e + 1
                out.append(s[i:e])
                i = e
            i = brace_arg(s, i, out)
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def unwrap_text(s):
    pat = re.compile(r"\\(textbf|textit|text|mathrm|mbox)(?![A-Za-z]) *(?=\{)")
    pos = 0
    while True:
        m = pat.search(s, pos)
        if not m:
            return s
        end = match_brace(s, m.end())
        if end is None:
            pos = m.end()
            continue
        content = s[m.end() + 1:end - 1]
        s = s[:m.start()] + ("" if content[:1].isspace() else content) + s[end:]
        pos = m.start()


def normalize(s):
    s = re.sub(r"\\(left|right)(?![A-Za-z]) *\.?", "", s)
    s = re.sub(r"\\[dt]frac(?![A-Za-z])", r"\\frac", s)
    s = unwrap_text(s)
    s = s.replace("^{\\circ}", "").replace("^\\circ", "")
    s = re.sub(r"\\(circ|degree)(?![A-Za-z])", "", s)
    s = s.replace("\u00b0", "")
    for a, b in (("\\%", ""), ("%", ""), ("\\$", ""), ("$", ""), ("{,}", ","),
                 ("\\!", ""), ("\\,", ""), ("\\;", ""), ("\\:", "")):
        s = s.replace(a, b)
    s = re.sub(r"\\q?quad(?![A-Za-z])", " ", s)
    s = s.replace("\\ ", " ").replace("~", " ").replace("\u2212", "-")
    s = brace_args(s)
    s = re.sub(r"\s+", " ", s, flags=re.ASCII).strip(" ")
    if s.endswith("."):
        s = s[:-1].strip(" ")
    m = re.match(r"[A-Za-z] *=(?!=) *", s)
    if m and len(s) >= 2:
        s = s[m.end():]
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", s):
        s = s.replace(",", "")
    return s


# ---- comparison with SymPy ----

LETTERS = {c: sympy.Symbol(c) for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"}
NAMES = dict(LETTERS, sqrt=sympy.sqrt, real_root=sympy.real_root, pi=sympy.pi, oo=sympy.oo)
TRANSFORMS = standard_transformations + (implicit_multiplication,)


def to_sympy_text(s):
    """LaTeX (normalised) to SymPy syntax; None when it has words or unknown commands."""
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            m = re.match(r"\\([A-Za-z]+)", s[i:])
            if not m:
                return None
            name = m.group(1)
            i += m.end()
            if name in ("frac",):
                parts = []
                for _ in range(2):
                    while i < len(s) and s[i] == " ":
                        i += 1
                    if i >= len(s) or s[i] != "{":
                        return None
                    end = match_brace(s, i)
                    if end is None:
                        return None
                    inner = to_sympy_text(s[i + 1:end - 1])
                    if inner is None:
                        return None
                    parts.append(inner)
                    i = end
                out.append("((%s)/(%s))" % tuple(parts))
            elif name == "sqrt":
                index = None
                while i < len(s) and s[i] == " ":
                    i += 1
                if i < len(s) and s[i] == "[":
                    e = s.find("]", i)
                    if e < 0:
                        return None
                    index = to_sympy_text(s[i + 1:e])
                    if index is None:
                        return None
                    i = e + 1
                while i < len(s) and s[i] == " ":
                    i += 1
                if i >= len(s) or s[i] != "{":
                    return None
                end = match_brace(s, i)
                if end is None:
                    return None
                inner = to_sympy_text(s[i + 1:end - 1])
                if inner is None:
                    return None
                out.append("sqrt(%s)" % inner if index is None else "real_root(%s,%s)" % (inner, index))
                i = end
            elif name == "pi":
                out.append(" pi ")
            elif name == "infty":
                out.append(" oo ")
            elif name in ("cdot", "times"):
                out.append("*")
            elif name == "div":
                out.append("/")
            else:
                return None
        elif c == "^":
            i += 1
            while i < len(s) and s[i] == " ":
                i += 1
            sign = ""
            if i < len(s) and s[i] in "+-":
                sign = s[i]
                i += 1
            if i < len(s) and s[i] == "{":
                end = match_brace(s, i)
                if end is None:
                    return None
                inner = to_sympy_text(s[i + 1:end - 1])
                if inner is None:
                    return None
                out.append("**(%s(%s))" % (sign, inner))
                i = end
            elif i < len(s) and s[i] == "\\":
                m = re.match(r"\\pi(?![A-Za-z])", s[i:])
                if not m:
                    return None
                out.append("**(%spi)" % sign)
                i += m.end()
            elif i < len(s):
                out.append("**(%s%s)" % (sign, s[i]))
                i += 1
            else:
                return None
        elif c in "{}":
            out.append("(" if c == "{" else ")")
            i += 1
        elif c == "\u03c0":
            out.append(" pi ")
            i += 1
        elif c == "\u221e":
            out.append(" oo ")
            i += 1
        elif c.isascii() and c.isalpha():
            if i + 1 < len(s) and s[i + 1].isascii() and s[i + 1].isalpha():
                return None  # a word
            out.append(" %s " % c)
            i += 1
        elif c.isdigit() or c in "+-*/(). ":
            out.append(c)
            i += 1
        else:
            return None
    return "".join(out)


def parse_one(s):
    if not s.strip():
        return None
    t = to_sympy_text(s)
    if t is None:
        return None
    # a number never multiplies what stands before it: "2 3", "x2", "x^23", "(2)3" are not answers
    if re.search(r"[\d.]\s+[\d.]", t) or re.search(r"[A-Za-z)]\s*[\d.]", t):
        return None
    try:
        return parse_expr(t, local_dict=NAMES, transformations=TRANSFORMS, evaluate=True)
    except Exception:
        return None


def split_top(s):
    parts, depth, start = [], 0, 0
    for k, c in enumerate(s):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(s[start:k])
            start = k + 1
    parts.append(s[start:])
    return parts


def parse_answer(s):
    """(open, close, [sympy expressions]) or None."""
    s = s.strip()
    if not s:
        return None
    o = c = ""
    body = s
    if len(s) >= 4 and s.startswith("\\{") and s.endswith("\\}"):
        o, c, body = "{", "}", s[2:-2]
    elif len(s) >= 2 and s[0] in "([" and s[-1] in ")]":
        o, c, body = s[0], s[-1], s[1:-1]
    if o:
        depth, whole = 0, True
        for ch in body:
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
                if depth < 0:
                    whole = False
        if not whole or depth:
            o = c = ""
            body = s
    els = []
    for part in split_top(body):
        e = parse_one(part)
        if e is None:
            return None
        els.append(e)
    if len(els) == 1 and o:
        if (o, c) == ("(", ")"):
            o = c = ""
        else:
            return None
    return o, c, els


def value(e):
    v = sympy.N(e, 50)
    if v in (sympy.oo, -sympy.oo):
        return v
    if v.has(sympy.zoo, sympy.nan) or not v.is_real:
        return None
    return v


def elem_equal(a, b):
    syms = a.free_symbols | b.free_symbols
    if len(syms) > 1:
        return False
    if syms:
        try:
            return sympy.simplify(a - b) == 0
        except Exception:
            return False
    va, vb = value(a), value(b)
    if va is None or vb is None:
        return False
    if va.is_infinite or vb.is_infinite:
        return va == vb
    return abs(va - vb) <= sympy.Float("1e-9") * max(1, abs(va), abs(vb))


def answers_equal(x, y):
    if x[0] != y[0] or x[1] != y[1] or len(x[2]) != len(y[2]):
        return False
    if x[0] == "{" or (x[0] == "" and len(x[2]) > 1):
        used = [False] * len(y[2])
        for a in x[2]:
            for j, b in enumerate(y[2]):
                if not used[j] and elem_equal(a, b):
                    used[j] = True
                    break
            else:
                return False
        return True
    return all(elem_equal(a, b) for a, b in zip(x[2], y[2]))


def equal(a, b):
    if not a or not b:
        return False
    if a.replace(" ", "") == b.replace(" ", ""):
        return True
    x = parse_answer(a)
    y = parse_answer(b) if x else None
    return bool(x and y and answers_equal(x, y))


def text(v):
    """A JSON number as text, the shortest of 15 or 17 significant digits that reads back exactly
    (how salign prints a number: 12.0 is "12")."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return v
    t = "%.15g" % v
    return t if float(t) == v else "%.17g" % v


def check(answer, solution):
    ae, se = extract(answer), extract(solution)
    an = normalize(ae) if ae is not None else None
    sn = normalize(se) if se is not None else None
    return {"correct": equal(an, sn), "answer_extracted": ae, "solution_extracted": se,
            "answer_normalized": an, "solution_normalized": sn}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        o = json.loads(line)
        print(json.dumps(check(text(o["answer"]), text(o["solution"])), ensure_ascii=False))


if __name__ == "__main__":
    main()
