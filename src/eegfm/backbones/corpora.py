"""Public EEG datasets by exact identifier, and which of them a backbone was pretrained on.

A dataset's ``corpus`` (config) names the public datasets its recordings
come from; a backbone's ``pretraining_corpus`` (registry) names those its
published weights were trained on. Both use the identifiers of
:data:`CORPORA`; a name matches an identifier or one of its aliases exactly
(ignoring case), never as a substring, and a dataset that is part of a
larger one (TUAB of TUEG) overlaps with it. A backbone pretrained on a
collection that is not itemised (REVE's 92 datasets) may have seen any
public dataset, which is said as such. ``docs/adding-a-backbone.md`` lists
the table; :func:`corpora_table` renders it.

Nothing here imports torch (or anything but the standard library).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Corpus:
    """One public dataset (or collection) and the names it goes by.

    Attributes
    ----------
    id
        The identifier used in configs and the registry.
    aliases
        Other exact names it goes by (matched ignoring case).
    parts
        Identifiers of datasets that are subsets of it (their recordings are in it).
    description
        What it is, for the documentation.
    itemised
        ``False`` for a collection eegfm cannot list dataset by dataset: any
        public dataset may be part of it.
    """

    id: str
    aliases: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()
    description: str = ""
    itemised: bool = True


_TUH_PARTS = ("TUAB", "TUAR", "TUEP", "TUEV", "TUSL", "TUSZ")

#: Every dataset identifier eegfm knows, with its aliases and parts.
CORPORA: tuple[Corpus, ...] = (
    Corpus("TUEG", ("TUH EEG", "TUH EEG Corpus", "TUH"), _TUH_PARTS, "Temple University Hospital EEG Corpus"),
    Corpus("TUAB", ("TUH Abnormal", "TUH EEG Abnormal Corpus"), (), "TUH EEG Abnormal Corpus (part of TUEG)"),
    Corpus("TUAR", ("TUH EEG Artifact Corpus",), (), "TUH EEG Artifact Corpus (part of TUEG)"),
    Corpus("TUEP", ("TUH EEG Epilepsy Corpus",), (), "TUH EEG Epilepsy Corpus (part of TUEG)"),
    Corpus("TUEV", ("TUH EEG Events Corpus",), (), "TUH EEG Events Corpus (part of TUEG)"),
    Corpus("TUSL", ("TUH EEG Slowing Corpus",), (), "TUH EEG Slowing Corpus (part of TUEG)"),
    Corpus("TUSZ", ("TUH Seizure", "TUH EEG Seizure Corpus"), (), "TUH EEG Seizure Corpus (part of TUEG)"),
    Corpus("SHHS", ("Sleep Heart Health Study",), (), "Sleep Heart Health Study (polysomnography)"),
    Corpus("PREST", (), (), "BIOT's private pretraining EEG"),
    Corpus("SEED", ("SJTU Emotion EEG Dataset",), (), "SJTU emotion EEG (the original SEED, not SEED-IV/V)"),
    Corpus("Siena Scalp EEG", ("Siena", "Siena Scalp EEG Database"), (), "Siena Scalp EEG Database (seizures)"),
    Corpus("BCI Competition IV-1", ("BCIC IV-1", "BCI Competition IV dataset 1"), (), "BCI Competition IV, data set 1"),
    Corpus("Grasp and Lift", ("WAY-EEG-GAL", "GAL"), (), "WAY-EEG-GAL grasp-and-lift EEG"),
    Corpus(
        "PhysioNet MI", ("EEGMMIDB", "PhysionetMI", "PhysioNet EEG Motor Movement/Imagery"), (),
        "PhysioNet EEG Motor Movement/Imagery Dataset",
    ),  # fmt: skip
    Corpus("HGD", ("High-Gamma Dataset", "Schirrmeister2017"), (), "High-Gamma Dataset (motor execution)"),
    Corpus("TSU", (), (), "as named in EEGPT's pretraining data"),
    Corpus("M3CV", (), (), "M3CV multi-subject, multi-session, multi-task EEG"),
    Corpus(
        "Lee2019", ("OpenBMI", "Lee2019 (OpenBMI)"), ("Lee2019_MI", "Lee2019_ERP", "Lee2019_SSVEP"),
        "OpenBMI (Lee et al. 2019): motor imagery, ERP and SSVEP sessions",
    ),  # fmt: skip
    Corpus("Lee2019_MI", (), (), "OpenBMI motor imagery sessions (MOABB)"),
    Corpus("Lee2019_ERP", (), (), "OpenBMI ERP sessions (MOABB)"),
    Corpus("Lee2019_SSVEP", (), (), "OpenBMI SSVEP sessions (MOABB)"),
    Corpus("SWEC iEEG", ("SWEC-ETHZ iEEG", "SWEC-ETHZ"), (), "SWEC-ETHZ intracranial EEG"),
    Corpus(
        "REVE corpus", (), (), "92 public datasets, 25,000 subjects (El Ouahidi et al. 2025); not itemised here",
        itemised=False,
    ),  # fmt: skip
    Corpus(
        "ZUNA public EEG", (), (), "~2 million channel-hours of public EEG (Warner et al. 2026); not itemised here",
        itemised=False,
    ),  # fmt: skip
)

BY_ID: dict[str, Corpus] = {c.id: c for c in CORPORA}
_BY_NAME: dict[str, str] = {name.upper(): c.id for c in CORPORA for name in (c.id, *c.aliases)}


def identify(name: str) -> str | None:
    """The identifier ``name`` stands for (exactly, ignoring case), else ``None``."""
    return _BY_NAME.get(name.strip().upper())


def _containers(identifier: str) -> list[str]:
    """Identifiers of the datasets ``identifier`` is part of, nearest first (transitively)."""
    out, frontier = [], [identifier]
    while frontier:
        parents = [c.id for c in CORPORA if any(p in c.parts for p in frontier) and c.id not in out]
        out += parents
        frontier = parents
    return out


def corpus_overlap(corpus: Iterable[str], pretraining_corpus: Sequence[str]) -> list[str]:
    """The names in ``corpus`` whose recordings a backbone pretrained on ``pretraining_corpus`` may have seen.

    Parameters
    ----------
    corpus
        The dataset's public source datasets, as the config names them.
    pretraining_corpus
        The backbone's pretraining datasets (identifiers of :data:`CORPORA`).

    Returns
    -------
    list of str
        Sorted; a name the pretraining corpus lists as is, ``"<name> (part of
        <id>)"`` for a subset of a listed dataset, and ``"<name> (possibly:
        <description>)"`` when a listed collection is not itemised.
    """
    pretrained = [BY_ID[p] if p in BY_ID else Corpus(p) for p in pretraining_corpus]
    listed = {c.id for c in pretrained if c.itemised}
    unitemised = [c for c in pretrained if not c.itemised]
    out = set()
    for name in corpus:
        identifier = identify(name)
        if identifier in listed:
            out.add(name)
        elif identifier is not None and (parent := next((p for p in _containers(identifier) if p in listed), None)):
            out.add(f"{name} (part of {parent})")
        elif unitemised:
            out.add(f"{name} (possibly: {unitemised[0].id}, {unitemised[0].description})")
    return sorted(out)


def unknown_names(corpus: Iterable[str]) -> list[str]:
    """Names in ``corpus`` that are no identifier or alias of :data:`CORPORA` (never checked for overlap)."""
    return [name for name in corpus if identify(name) is None]


def warn_corpus_overlap(corpus: Iterable[str], pretraining_corpus: Sequence[str], label: str) -> list[str]:
    """:func:`corpus_overlap`, logged as a warning when there is any; unknown names are warned about too.

    ``label`` names the job (dataset and backbone) in the warnings.
    """
    corpus = list(corpus)
    unknown = unknown_names(corpus)
    if unknown:
        logger.warning(
            "%s: corpus %s: not dataset identifiers eegfm knows (see docs/adding-a-backbone.md, 'Dataset "
            "identifiers'), so their overlap with the backbone's pretraining data is not checked",
            label, ", ".join(unknown),
        )  # fmt: skip
    overlap = corpus_overlap(corpus, pretraining_corpus)
    if overlap:
        logger.warning(
            "%s: the backbone's pretraining corpus includes %s; scores may be optimistic (the model may have seen "
            "these recordings)", label, ", ".join(overlap),
        )  # fmt: skip
    return overlap


def corpora_table() -> str:
    """The identifiers, aliases and parts as a markdown table (``docs/adding-a-backbone.md`` holds it)."""
    rows = ["| identifier | aliases | contains | what |", "| --- | --- | --- | --- |"]
    for c in CORPORA:
        rows.append(f"| `{c.id}` | {', '.join(c.aliases) or '-'} | {', '.join(c.parts) or '-'} | {c.description} |")
    return "\n".join(rows)
