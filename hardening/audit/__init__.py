"""CIS-style audits of the host, the engine, images and containers (``stockade audit``).

Public entry points (import them from their modules; this package imports nothing, so loading one
reporter never loads the others):

* ``hardening.audit.registry.load_registry() -> Registry`` and ``Registry.select(domains, profile,
  include, exclude) -> list[Check]``;
* ``hardening.audit.view.for_machine(paths, config, config_error, *, host_root, images, packages)
  -> AuditView`` (or an ``AuditView`` built by hand, as the tests do);
* ``hardening.audit.runner.run_audit(view, checks, *, scope, profile, fail_on, ignores, benchmark,
  tool_version) -> Report``;
* ``hardening.audit.report.render(report, fmt) -> str`` for table, json, sarif, junit and html;
* ``hardening.audit.ignore.load_ignore_file(path, known_ids) -> list[IgnoreEntry]``.
"""
