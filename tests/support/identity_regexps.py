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
]
