/* mathexpr.h - a small parser and evaluator for final answers written in (normalised) LaTeX, so
 * that math-check can compare two answers by value.
 *
 * An answer is one of:
 *   - an expression: numbers (12, 0.5, .5), one-letter variables, \pi (or π), \infty (or ∞),
 *     + - * / ^ \cdot \times \div, implicit multiplication (2x, 3\sqrt{2}, (x+1)(x-1)),
 *     \frac{a}{b}, \sqrt{a}, \sqrt[n]{a}, parentheses and braces for grouping;
 *   - a group of expressions separated by top-level commas: a tuple or interval written with
 *     ( [ ) ] around it ("(1, 2)", "[0, \infty)"), a set "\{1, 2\}", or a bare list "1, 2".
 * A run of two or more letters (a word: "cm", "sin") is not an expression; a LaTeX command other
 * than the ones above is not either. An unbraced exponent is one character, as in LaTeX, and a
 * number never multiplies implicitly what stands before it ("2 3", "x2", "x^23", "(2)3" are not
 * expressions), so no digit run is ever read two ways.
 *
 * Equality (sa_mexpr_equal): groups need the same brackets and size; tuples and intervals compare
 * element by element in order, sets and bare lists as multisets. Two expressions are equal when
 * they use at most one variable between them and agree within a relative 1e-9 at every point of
 * a fixed set (the value itself when there is no variable); +-infinity equals itself; a value that
 * is not a real number (sqrt(-1), 1/0 at a point) equals nothing. */
#ifndef SALIGN_MATHEXPR_H
#define SALIGN_MATHEXPR_H

typedef struct SaMathExpr SaMathExpr;

/* Parse a normalised answer. NULL when the text is not an answer of the kinds above (also on
 * out of memory: the caller then compares texts only). */
SaMathExpr *sa_mexpr_parse(const char *s);
void sa_mexpr_free(SaMathExpr *e);
/* 1 if equal by value (see above), 0 if not. */
int sa_mexpr_equal(const SaMathExpr *a, const SaMathExpr *b);
/* The value of a group's only element with no variable (for tests); NAN otherwise. */
double sa_mexpr_value(const SaMathExpr *e);

#endif
