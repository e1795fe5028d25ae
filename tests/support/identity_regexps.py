"""One table of what a keyless identity or issuer regular expression matches, run against both
``trust.identity`` and ``policies.signatures`` so the two can never drift apart again.

The semantics are cosign's ``--certificate-identity-regexp`` and policy-controller's
``subjectRegExp``: Go's ``regexp.MatchString``, an unanchored search. Users port those patterns,
so an unanchored pattern matches anywhere and ``^…$`` is what pins the whole value.
"""

from __future__ import annotations

# (pattern, certificate value, matches?)
CASES: list[tuple[str, str, bool]] = [
    (r"@example\.com", "me@example.com", True),
    (r"@example\.com", "me@example.com.evil.test", True),  # unanchored: anywhere, as in cosign
    (r"^me@example\.com$", "me@example.com", True),
    (r"^me@example\.com$", "me@example.com.evil.test", False),
    (r"^me@example\.com$", "not-me@example.com", False),
    (r"^https://github\.com/org/", "https://github.com/org/app/.github/workflows/r.yml@refs/tags/v1", True),
    (r"^https://github\.com/org/", "https://github.com/organisation/app", False),
    (r"https://token\.actions\.githubusercontent\.com", "https://token.actions.githubusercontent.com", True),
    (r"release\.yml@refs/tags/v", "https://github.com/org/app/.github/workflows/release.yml@refs/tags/v1.4", True),
    (r"^.*/release\.yml@refs/heads/main$", "https://github.com/org/app/.github/workflows/release.yml@refs/tags/v1", False),
    (r"(?i)^ME@EXAMPLE\.COM$", "me@example.com", True),
    (r"Example", "me@example.com", False),  # case-sensitive unless (?i)
    (r"^$", "", True),
    (r"x", "", False),
    # Go's meanings where Python's differ: $ is the end (not before a final newline), classes are ASCII.
    (r"^me@example\.com$", "me@example.com\n", False),
    (r"@example\.com", "me@example.com\n", False),  # no pattern accepts a control character
    (r"@refs/tags/v\d+$", "x@refs/tags/v\u0661", False),  # ARABIC-INDIC DIGIT ONE
    (r"^\w+@example\.com$", "\u0448@example.com", False),  # CYRILLIC SMALL LETTER SHA
    (r"^\w+@example\.com$", "me_2@example.com", True),
]
