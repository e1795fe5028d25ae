"""TUF trust for tags (what Docker Content Trust did, on TUF 1.0).

* ``model.py``: the repository as data, the rules for new versions (no I/O);
* ``store.py``: the repository on disk, plain files any web server serves;
* ``keys.py``: the repository's encrypted private keys, by TUF key id;
* ``repository.py``: the tools (init, sign, revoke, resign, key rotation, describe);
* ``client.py``: python-tuf's ngclient from a pinned root: tag -> the manifest digest it must have;
* ``errors.py``: one error class per way TUF trust can fail.

Nothing here is imported on the warm ``run`` path: ``client`` imports tuf inside its functions,
and the command line imports these modules inside its handlers.
"""
