"""The study design (``datasets.<name>.cv``; ``cv`` of an in-memory experiment): which unit each fold holds out."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from eegfm.config.base import StrictModel


class CrossValidation(StrictModel):
    """The study design: which unit is held out in each fold (see eegfm.splits for each scheme)."""

    scheme: Literal["group_kfold", "loso", "cross_session", "leave_one_run_out", "within_subject"] = Field(
        "group_kfold",
        description="'group_kfold': stratified group k-fold (cross-subject with group_by: subject); 'loso': "
        "leave one group (subject) out; 'cross_session': fold k tests the k-th session of every subject, "
        "trained on their other sessions; 'leave_one_run_out': fold k tests the k-th run of every subject; "
        "'within_subject': k-fold inside each subject in time-ordered blocks, fold k tests block k of every "
        "subject. One pooled model is trained per fold.",
    )
    n_splits: int = Field(
        5, ge=2, description="Folds for 'group_kfold' and 'within_subject' (blocks per subject); ignored otherwise."
    )
    group_by: Literal["subject", "session", "run"] = Field(
        "subject",
        description="'group_kfold' and 'loso': unit that never straddles train and test: 'subject', 'session' "
        "(subject+session) or 'run' (subject+session+run). The other schemes fix their own unit.",
    )
    gap_s: float | None = Field(
        None,
        ge=0,
        description="Training windows closer than this (seconds, edge to edge) to a test window of the same "
        "recording are dropped from that fold's training set (they are tested in their own fold); overlapping "
        "windows are always dropped. Matters where a recording straddles train and test ('within_subject') "
        "and for the time-blocked validation fallback. null: one window length.",
    )

    @property
    def unit(self) -> str:
        """The held-out unit: 'subject', 'session', 'run' or 'block' (a time block of one subject)."""
        return "block" if self.scheme == "within_subject" else self.group_by

    @model_validator(mode="before")
    @classmethod
    def _group_by_from_the_scheme(cls, data: Any) -> Any:
        """The designs beyond group_kfold/loso fix their unit: group_by is set from the scheme (a dumped
        config reads back the same), and a contradicting group_by is an error."""
        implied = {"cross_session": "session", "leave_one_run_out": "run", "within_subject": "subject"}
        if isinstance(data, dict) and data.get("scheme") in implied:
            scheme, given = data["scheme"], data.get("group_by")
            if given is not None and given != implied[scheme]:
                raise ValueError(
                    f"group_by: '{given}' does not fit scheme '{scheme}', which holds out "
                    f"{'blocks' if scheme == 'within_subject' else implied[scheme] + 's'}; leave group_by out "
                    "(or use scheme group_kfold/loso with group_by)"
                )
            data = {**data, "group_by": implied[scheme]}
        return data
