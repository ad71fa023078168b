"""The exceptions tpmlab raises, one class per layer (made in ``_core``, where
every harness error becomes one of them).

``TpmlabError`` is the base; every instance has ``kind`` (what the error is:
``bad_input``, ``tpm_refusal``, ``transport``, ``emulator``,
``missing_package``, ``store`` or ``internal``; the command line's exit code
follows it), ``layer`` (where it came from), ``rc`` (TPM response code or
None), where in an input it is: ``file``, ``line``, ``column``, ``offset``
(byte offset; each None when not known), ``reason`` (the message without
that place in front) and ``timed_out``. The place is read from the error's
data, never parsed out of its message.

:class:`ExpectationFailed` is not a ``TpmlabError``: it is an
``AssertionError`` (the test's verdict, not a harness failure), raised by
:meth:`tpmlab.Dut.expect` when the expectation is not met.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, List

from ._core import (EmulatorError, MissingDependencyError, ParseError, ScenarioError, StoreError, TpmError,
                    TpmlabError, TransportError)

if TYPE_CHECKING:
    from .results import Check, StepResult

__all__ = ["TpmlabError", "TpmError", "TransportError", "EmulatorError", "MissingDependencyError", "ParseError",
           "ScenarioError", "StoreError", "ExpectationFailed"]


class ExpectationFailed(AssertionError):
    """An ``expect`` that was not met: fails the test like a failed ``assert``.

    ``step`` is the expect step's :class:`~tpmlab.StepResult`, ``judged_step``
    the index of the step it judged, ``failed_checks`` what was not met and
    ``where`` the file:line of the ``expect`` call.
    """

    def __init__(self, message: str, step: "StepResult", judged_step: int, where: str):
        super().__init__(message)
        self.step = step
        self.judged_step = judged_step
        self.where = where

    @property
    def failed_checks(self) -> List["Check"]:
        """The checks of the expect step that were not met."""
        return self.step.failed_checks
