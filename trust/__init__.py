"""Content trust: keys, cosign-format signatures, Sigstore bundles, TUF, and the verification cache.

The package's public surface for other parts of Stockade is small:

* ``trust.verify.verify_image(registry, reference, requirements) -> Verdict`` (what ``run`` calls),
* ``trust.requirements.Requirements`` (what a policy asks for),
* ``trust.keys`` (loading and generating keys), ``trust.sign`` (``sign``/``sign-blob``).

Nothing here imports sigstore or tuf at module level: they are imported by the functions that verify
certificates or refresh TUF metadata, so a cached verification (and ``stockade run`` of an image
verified before) never pays for them.
"""
