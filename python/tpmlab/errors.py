"""The exceptions tpmlab raises, one class per layer (made in ``_core``, where
every harness error becomes one of them).

``TpmlabError`` is the base; every instance has ``layer``, ``rc`` (TPM response
code or None), ``offset`` (byte offset of a parse error or None), ``file``,
``line``, ``column`` (where a scenario is wrong, or None) and ``timed_out``.
"""
from ._core import (EmulatorError, MissingDependencyError, ParseError, ScenarioError, StoreError, TpmError,
                    TpmlabError, TransportError)

__all__ = ["TpmlabError", "TpmError", "TransportError", "EmulatorError", "MissingDependencyError", "ParseError",
           "ScenarioError", "StoreError"]
