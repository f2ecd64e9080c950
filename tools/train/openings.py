"""openings.py - the story openings (the "questions") of the demo aligner's data, and their split.

Deterministic: every opening comes from a small grammar of TinyStories-like first sentences, the
list is shuffled with a fixed seed, and an opening belongs to the test split when the first byte
of its sha256 is < 64 (about a quarter), so adding openings never moves an existing one between
splits. `python3 openings.py train|test` prints one split, one opening per line.
"""
import hashlib
import random
import sys

NAMES = ["Lily", "Tom", "Ben", "Sue", "Mia", "Max", "Anna", "Tim", "Sam", "Lucy", "Jack", "Amy", "Sara",
         "Bob", "Jill", "Timmy", "Sally", "Molly", "Jane", "Joe", "Emma", "Zoe", "Leo", "Kitty", "Spot",
         "Mark", "Ellie", "Sophie", "Billy", "Daisy"]
CREATURES = ["little girl", "little boy", "small dog", "big cat", "little bird", "friendly bear",
             "tiny bunny", "old man", "kind lady", "little fish", "happy frog", "small mouse", "big dog",
             "little duck", "young prince", "little princess"]
ADJS = ["happy", "little", "curious", "brave", "shy", "silly", "kind", "small", "big", "funny"]
PLACES = ["park", "beach", "forest", "store", "zoo", "farm", "garden", "lake", "school", "playground",
          "river", "hill"]
THINGS = ["red ball", "big box", "toy car", "new doll", "blue kite", "shiny rock", "small boat", "soft bear",
          "yellow hat", "green truck", "little drum", "pretty flower"]
ACTIVITIES = ["play outside", "draw pictures", "sing songs", "run and jump", "build towers", "read books",
              "dance in the rain", "look at the stars", "play with her friends", "play with his friends"]
HOMES = ["small house", "big tree", "tall tower", "little hole", "quiet town", "big castle"]


def _all():
    out = []
    for n in NAMES:
        for c in CREATURES:
            out.append(f"Once upon a time, there was a {c} named {n}.")
        for p in PLACES:
            out.append(f"One day, {n} went to the {p}.")
            out.append(f"It was a sunny day and {n} went to the {p}.")
        for t in THINGS:
            out.append(f"{n} had a {t}.")
            out.append(f"{n} found a {t} in the {PLACES[(len(t) + len(n)) % len(PLACES)]}.")
        for a in ACTIVITIES:
            out.append(f"{n} loved to {a}.")
        for m in NAMES:
            if m != n and (len(m) + len(n)) % 3 == 0:
                out.append(f"{n} and {m} were best friends.")
    for a in ADJS:
        for c in CREATURES:
            out.append(f"Once upon a time, there was a {a} {c}.")
        for h in HOMES:
            out.append(f"There was a {a} cat who lived in a {h}.")
    return sorted(set(out))


def is_test(opening):
    return hashlib.sha256(opening.encode()).digest()[0] < 64


def openings(split):
    xs = _all()
    random.Random(1234).shuffle(xs)
    return [x for x in xs if is_test(x) == (split == "test")]


if __name__ == "__main__":
    for o in openings(sys.argv[1] if len(sys.argv) > 1 else "train"):
        print(o)
