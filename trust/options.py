"""The vocabularies of the trust verbs' options, in a module with no imports.

The command line builds its parser from these on every start; keeping them here (rather than in
``keys``, ``sign`` or ``verify``, which import cryptography and the registry client) keeps
``stockade version`` and every other verb from paying for the trust package.
"""

KEY_KINDS = ("ecdsa-p256", "ed25519")  # what ``key generate`` makes
KEY_FORMATS = ("pkcs8", "cosign")  # how it writes the private key
SIGNATURE_FORMATS = ("legacy", "bundle")  # cosign .sig/.att tags, or OCI 1.1 referrer bundles
SCOPES = ("resolved", "index", "platform", "both")  # which digests of an image index are verified
