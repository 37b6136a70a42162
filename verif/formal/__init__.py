"""Formal proofs with SymbiYosys (docs/formal.md): one spec per file, the property registry
(:mod:`verif.formal.registry`), the runner (:mod:`verif.formal.runner`) and ``recnmp formal``
(:mod:`verif.formal.cli`)."""
