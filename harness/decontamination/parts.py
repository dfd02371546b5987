"""The parts of a benchmark item that leak into training data, and how each kind is matched.

A benchmark's ``reference_items()`` gives ``(task_id, part, text)``: whole
items (``prompt``, ``solution``, ``tests``, CRUXEval's ``code``/``input``/
``output``) and the finer parts a training row copies on their own:

=================  =====================================  ======================================
part               benchmarks                             matched by
=================  =====================================  ======================================
``statement``      MBPP's problem statement               normalised exact match (>= 8 words)
``docstring``      HumanEval's docstring text             normalised exact match; n-grams if long
``question``       LiveCodeBench's question text          normalised exact match; n-grams
``description``    DS-1000's problem description          normalised exact match; n-grams
``signature``      HumanEval's ``def`` line               exact substring (>= 40 characters)
``assertion:K``    MBPP's K-th assertion                  exact substring
``test_input:K``   LiveCodeBench's K-th public input      exact substring
``code_context``   DS-1000's code context                 exact substring; n-grams
=================  =====================================  ======================================

Natural-language parts (:data:`TEXT_PARTS`) are compared as lowercase word
tokens (punctuation, whitespace, line breaks and case ignored): a row
contains the part when the part's whole token sequence occurs in it.  A
statement shorter than ``min_statement_words`` words, or one that is only a
generic phrasing (:func:`is_generic`: "Write a function to reverse a
string."), is not matched on its own (its whole item still is).  Code parts
go to the substring method (BigCode's normal form); any part of at least
``ngram_min_tokens`` tokens also goes to the n-gram method.
"""

from __future__ import annotations

import ast
import re

#: Parts compared as natural-language text (word tokens), never as squashed substrings.
TEXT_PARTS = frozenset({"statement", "docstring", "question", "description"})
#: Whole-item parts: indexed by every method as before parts existed.
WHOLE_PARTS = frozenset({"prompt", "solution", "tests", "code", "input", "output"})

#: Lead-in phrasings of task statements; they say nothing about which task it is.
LEAD_INS = tuple(
    tuple(p.split())
    for p in sorted(
        {
            "write a python function to", "write a python function that", "write a python function which",
            "write a python function", "write a function to", "write a function that", "write a function which",
            "write a function in python to", "write a function", "write a python program to",
            "write a program to", "write a program that", "write a python script to", "write code to",
            "write a method to", "write a class to", "write a lambda function to", "create a function to",
            "create a function that", "create a python function to", "create a python function that",
            "implement a function to", "implement a function that", "implement a python function to",
            "define a function to", "define a function that", "you are given", "given", "please",
            "can you write a function to", "how do i", "how can i", "how to",
        },
        key=lambda p: -len(p.split()),
    )
)  # fmt: skip

#: Words that carry no identity in a programming task statement: English function words and the
#: vocabulary every task shares (data structures, everyday operations).  A statement needs at least
#: ``MIN_DISTINCT`` words outside this set to be matched on its own.
GENERIC_WORDS = frozenset(
    """
    a an the of to in on for from with by and or not no is are be it its this that these those which who
    whose as at into than then if else whether or not only all any each every some one two three first
    second last given given new other same both either another between among using use used
    write python function program method code script class lambda create implement define return returns
    returned print prints printed find get compute calculate determine check test make give gives take
    takes count counts number numbers integer integers int float floats value values element elements
    item items list lists array arrays tuple tuples string strings str char character characters word
    words letter letters digit digits dictionary dictionary dict dicts set sets key keys input output
    sum total product average mean maximum minimum max min largest smallest biggest greatest highest
    lowest longest shortest length size sort sorted sorting reverse reversed remove removes delete add
    adds insert append convert converts converted split join merge contains contain present exists
    exist occurrence occurrences frequency unique duplicate duplicates even odd positive negative zero
    prime primes factorial fibonacci palindrome vowels consonants uppercase lowercase case
    true false none yes otherwise whether or nth n k m x y i j
    """.split()
)
#: Distinctive words a statement needs to be matched on its own (after its lead-in).
MIN_DISTINCT = 1

_WORDS = re.compile(r"\w+")


def base(part: str) -> str:
    """The kind of a part label (``assertion:3`` -> ``assertion``)."""
    return part.split(":", 1)[0]


def is_text(part: str) -> bool:
    """Whether a part is natural-language text (matched as words)."""
    return base(part) in TEXT_PARTS


def strip_lead_in(tokens: list[str]) -> list[str]:
    """The tokens after the longest generic lead-in phrasing (``write a function to``), if any."""
    for lead in LEAD_INS:
        if tuple(tokens[: len(lead)]) == lead:
            return tokens[len(lead) :]
    return tokens


def distinct_words(tokens: list[str]) -> list[str]:
    """The words of a statement that say which task it is: after the lead-in, outside :data:`GENERIC_WORDS`."""
    return [t for t in strip_lead_in(tokens) if t not in GENERIC_WORDS and not t.isdigit()]


def is_generic(tokens: list[str]) -> bool:
    """A statement that is only an everyday phrasing ("write a function to sort a list of elements")."""
    return len(set(distinct_words(tokens))) < MIN_DISTINCT


# ------------------------------------------------------------------ splitting benchmark items
def docstring_and_signature(prompt: str, entry_point: str) -> tuple[str, str]:
    """HumanEval: the entry point's docstring text (up to its examples) and its ``def`` line(s)."""
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        return "", ""
    lines = prompt.splitlines()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
            doc = ast.get_docstring(node) or ""
            first = node.body[0] if node.body else None
            end = (first.lineno - 1) if first is not None else node.lineno
            signature = "\n".join(lines[node.lineno - 1 : max(end, node.lineno)]).strip()
            return docstring_text(doc), signature
    return "", ""


_EXAMPLES = re.compile(r"^\s*(>>>|for example\b|example\b|examples\b|e\.g\.)", re.IGNORECASE | re.MULTILINE)


def docstring_text(doc: str) -> str:
    """A docstring's description: the text before its first example (``>>>``, "For example", ...)."""
    m = _EXAMPLES.search(doc)
    return (doc[: m.start()] if m else doc).strip()


def statement_before_asserts(prompt: str) -> str:
    """A docstring-style prompt's problem statement: the text before its first ``assert`` (MBPP+)."""
    text = prompt.strip().strip('"').strip()
    return text.split("assert ", 1)[0].strip()


def assertion_lines(tests: str) -> list[str]:
    """Each ``assert`` statement of a test block, one per entry."""
    return [ln.strip() for ln in tests.splitlines() if ln.strip().startswith("assert")]


def problem_description(prompt: str) -> str:
    """A ``Problem: ... A: <code>`` prompt's description: after ``Problem:``, before the code part (DS-1000)."""
    text = prompt.split("Problem:", 1)[-1]
    cut = re.search(r"^\s*A:\s*$|^\s*<code>", text, re.MULTILINE)
    return (text[: cut.start()] if cut else text).strip()
