"""Signal patches for the pyhf background-only workspaces of a result, as SModelS 3.0.3 builds them.

``docs/statistics.md`` §6 ("Signal patch"; SModelS ``statistics/pyhfInterface.py``:
``PyhfData.getWSInfo``, ``updatePyhfNames``, ``createPatchForRegion``, ``checkConsistency``,
``PyhfUpperLimitComputer.patchMaker``, ``wsMaker``; ``statsTools.py:getComputerPyhf``):

1. Only the files of ``jsonFiles`` are used (never ``jsonFiles_FullLikelihood``). A file none of
   whose ``SR`` entries is a data set of the result is dropped.
2. The signals of a file are those of the result's data sets that the file names (SRs and named
   CRs), in data-set order. The number of signal-bearing entries (SRs, plus CRs with a data set
   when ``includeCRs``) must equal the number of those signals.
3. Entries without a ``pyhf`` channel name take the workspace's observations in order; channel
   types are guessed from the names (``CR``/``VR``/``SR`` prefix, ``CR`` inside -> CR). VRs, CRs
   when ``includeCRs`` is off, and CRs when the SRs alone match the entries, get no signal.
4. Each signal-bearing channel gets a new sample ``bsm`` (signal per bin, bins in ``name[k]``
   order) with a ``normfactor`` ``mu_SIG``, a ``lumi`` modifier ``lumi`` and, when
   ``signalUncertainty`` = d is nonzero, a ``histosys`` ``signalUncertainty`` with
   hi = s (1 + d), lo = s (1 - d).
5. Channels of the listed VRs, and of the listed CRs unless ``includeCRs``, are removed. Channels
   not listed at all stay as they are, without signal.
6. The a-priori expected workspace replaces each observation by the sum of the nominal
   background samples of its channel (auxiliary data unchanged).

One difference in form, not in value: SModelS addresses channels by their index in
``observations``; here channels are found by name (identical when both lists have the same
order, as in every workspace of the v3.0.0 database).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from protomodels.database.records import PyhfWorkspace, Result
from protomodels.exceptions import ProtomodelsError

__all__ = [
    "PatchPlan",
    "PyhfPatchError",
    "SignalChannel",
    "apriori_spec",
    "guess_region_type",
    "patch_plans",
    "patched_spec",
    "plan_patch",
]


def __dir__() -> list[str]:
    return __all__


SIGNAL_SAMPLE = "bsm"
POI_NAME = "mu_SIG"


class PyhfPatchError(ProtomodelsError):
    """A pyhf workspace cannot be patched with the signals of its result."""


@dataclass(frozen=True)
class SignalChannel:
    """A channel of the workspace that receives a signal sample.

    Attributes:
        channel: the pyhf channel name.
        datasets: the data-set id of every bin, in bin order.
    """

    channel: str
    datasets: tuple[str, ...]


@dataclass(frozen=True)
class PatchPlan:
    """How one JSON file of a result is patched (signal independent).

    Attributes:
        file_name: the ``jsonFiles`` entry.
        signal_channels: channels that get a ``bsm`` sample.
        removed: channels taken out of the workspace (VRs; CRs unless ``includeCRs``).
        datasets: data sets whose signals belong to this file (SModelS's ``nsignals[file]``), in
            the result's data-set order; their sum is this file's share of the total yield.
    """

    file_name: str
    signal_channels: tuple[SignalChannel, ...]
    removed: tuple[str, ...]
    datasets: tuple[str, ...]


def guess_region_type(name: str) -> str:
    """SModelS's ``guessPyhfType``: the region type from a pyhf channel name."""
    if name.startswith("CR"):
        return "CR"
    if name.startswith("VR"):
        return "VR"
    if name.startswith("SR"):
        return "SR"
    return "CR" if "CR" in name else "SR"


def _dataset_ids(result: Result) -> list[str]:
    return [d.data_id or d.dataset_id for d in result.datasets]


def _carries_signal(entry: Mapping[str, Any], include_crs: bool) -> bool:
    """Entries that receive a signal (``checkConsistency``, ``createPatchForRegion``)."""
    if entry["type"] == "SR":
        return True
    return entry["type"] == "CR" and include_crs and entry["smodels"] is not None


def _assign_channel_names(
    entries: list[dict[str, Any]], observations: Sequence[Mapping[str, Any]], include_crs: bool
) -> None:
    """SModelS's ``updatePyhfNames``: name the entries after the workspace's observations."""
    if entries and entries[0].get("pyhf") is not None:
        return
    n_entries = len(entries)
    n_srs = sum(guess_region_type(o["name"]) == "SR" for o in observations)
    counter = 0
    for observation in observations:
        name = observation["name"]
        kind = guess_region_type(name)
        without_signal = kind == "VR" or (kind == "CR" and (not include_crs or n_srs == n_entries))
        if without_signal:
            entries.append({"pyhf": name, "smodels": None, "type": kind})
            continue
        n_bins = len(observation["data"])
        labels = [name] if n_bins == 1 else [f"{name}[{i}]" for i in range(n_bins)]
        for label in labels:
            if counter < n_entries:
                entries[counter]["pyhf"] = label
                entries[counter]["type"] = kind
            counter += 1


def plan_patch(result: Result, workspace: PyhfWorkspace) -> PatchPlan | None:
    """The patch plan of one ``jsonFiles`` file, or None when the file models no data set.

    Raises:
        PyhfPatchError: the file's mapping and the result's data sets do not fit together, or
            the workspace JSON is missing.
    """
    where = f"{result.result_id}/{workspace.file_name}"
    if workspace.workspace is None:
        msg = f"{where}: the pyhf workspace is missing ({result.fallback or 'no fallback'})"
        raise PyhfPatchError(msg)
    datasets = _dataset_ids(result)
    entries = [
        {"smodels": c.smodels, "pyhf": c.pyhf, "type": c.region_type} for c in workspace.channels
    ]
    if not any(e["type"] == "SR" and e["smodels"] in datasets for e in entries):
        return None  # getComputerPyhf drops files without a data set of the result
    named = {e["smodels"] for e in entries}
    own = tuple(d for d in datasets if d in named)
    n_signal_entries = sum(_carries_signal(e, result.include_crs) for e in entries)
    if n_signal_entries != len(own):
        msg = (
            f"{where}: {n_signal_entries} signal-bearing jsonFiles entries but {len(own)} data "
            "sets of the result are named in it; fix jsonFiles in globalInfo.txt"
        )
        raise PyhfPatchError(msg)
    spec = workspace.workspace
    observations = spec.get("observations")
    channels = {c["name"]: c for c in spec.get("channels", [])}
    if not observations or not channels:
        msg = f"{where}: the workspace has no channels or observations; the JSON is corrupt"
        raise PyhfPatchError(msg)
    _assign_channel_names(entries, observations, result.include_crs)
    signal_channels: list[SignalChannel] = []
    removed: list[str] = []
    for entry in entries:
        for observation in observations:
            name = observation["name"]
            if entry.get("pyhf") not in (name, f"{name}[0]"):
                continue
            if not _carries_signal(entry, result.include_crs):
                if not (entry["type"] == "CR" and result.include_crs):
                    removed.append(name)
                break
            if entry["smodels"] not in own:
                msg = f"{where}: region {entry['smodels']!r} is not a data set of the result"
                raise PyhfPatchError(msg)
            if entry["pyhf"] == name:
                names = [entry["smodels"]]
            else:  # bins name[0], name[1], ... in order
                names, k = [], 0
                while True:
                    found = [e["smodels"] for e in entries if e.get("pyhf") == f"{name}[{k}]"]
                    if not found:
                        break
                    names += found
                    k += len(found)
            if name not in channels:
                msg = f"{where}: observation {name!r} has no channel; the JSON is corrupt"
                raise PyhfPatchError(msg)
            n_bins = len(channels[name]["samples"][0]["data"])
            if len(names) != n_bins:
                msg = (
                    f"{where}: channel {name!r} has {n_bins} bins but {len(names)} are mapped "
                    "to data sets; map every bin as name[k] in jsonFiles"
                )
                raise PyhfPatchError(msg)
            signal_channels.append(SignalChannel(name, tuple(names)))
            break
    if not signal_channels:
        msg = f"{where}: no channel of the workspace matches the jsonFiles entries"
        raise PyhfPatchError(msg)
    return PatchPlan(workspace.file_name, tuple(signal_channels), tuple(removed), own)


def patch_plans(result: Result) -> list[PatchPlan]:
    """The plans of every ``jsonFiles`` file of a result that models one of its data sets.

    Raises:
        PyhfPatchError: see :func:`plan_patch`.
    """
    plans = []
    for workspace in result.pyhf:
        if workspace.full:
            continue  # jsonFiles_FullLikelihood is never used by SModelS 3.0.3
        plan = plan_patch(result, workspace)
        if plan is not None:
            plans.append(plan)
    return plans


def patched_spec(
    spec: Mapping[str, Any],
    plan: PatchPlan,
    signals: Mapping[str, float],
    signal_uncertainty: float | None = None,
) -> dict[str, Any]:
    """The workspace with the ``bsm`` sample added and the unused regions removed (a copy).

    Args:
        spec: the background-only workspace JSON.
        plan: from :func:`plan_patch`.
        signals: signal yield (events, s = sigma x eff x lumi) per data-set id; missing ids
            count as 0.
        signal_uncertainty: relative signal uncertainty (``signalUncertainty``), or None.
    """
    out = {k: v for k, v in spec.items() if k != "channels"}
    gone = set(plan.removed)
    by_name = {c.channel: c for c in plan.signal_channels}
    channels = []
    for channel in spec["channels"]:
        if channel["name"] in gone:
            continue
        target = by_name.get(channel["name"])
        if target is None:
            channels.append(channel)
            continue
        data = [float(signals.get(name, 0.0)) for name in target.datasets]
        modifiers: list[dict[str, Any]] = [
            {"name": POI_NAME, "type": "normfactor", "data": None},
            {"name": "lumi", "type": "lumi", "data": None},
        ]
        if signal_uncertainty:
            modifiers.append(
                {
                    "name": "signalUncertainty",
                    "type": "histosys",
                    "data": {
                        "hi_data": [x * (1.0 + signal_uncertainty) for x in data],
                        "lo_data": [x * (1.0 - signal_uncertainty) for x in data],
                    },
                }
            )
        sample = {"name": SIGNAL_SAMPLE, "data": data, "modifiers": modifiers}
        channels.append({**channel, "samples": [sample, *channel["samples"]]})
    out["channels"] = channels
    return copy.deepcopy(out)


def apriori_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The a-priori expected workspace: observations = sum of the nominal background samples
    (every sample but ``bsm``) of each remaining channel; auxiliary data unchanged."""
    out = copy.deepcopy(dict(spec))
    channels = {c["name"]: c for c in out["channels"]}
    for observation in out["observations"]:
        channel = channels.get(observation["name"])
        if channel is None:
            continue
        total = [0.0] * len(observation["data"])
        for sample in channel["samples"]:
            if sample["name"] == SIGNAL_SAMPLE:
                continue
            for i, value in enumerate(sample["data"]):
                total[i] += value
        observation["data"] = total
    return out
