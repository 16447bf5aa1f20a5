"""Run SModelS 3.0.x on SLHA files and write its predictions as JSON (the keys of
``../shared/data/reference/*.json``). Runs under a Python that has SModelS installed (it is not a
dependency of protomodels); ``benchmarks/lifetimes.py`` calls it.

Usage: SMODELS_PYTHON smodels_driver.py DATABASE_DIR OUT_DIR FILE.slha [...]

A file with ``BLOCK QNUMBERS`` of non-MSSM particles (a resonance or dark-matter model) is read
with its own particle content (SModelS's ``model`` parameter set to the SLHA file); other files
with the MSSM particles.

Settings as the reference files: sigmacut 0.005 fb, mass and invisible compression with
minmassgap 5 GeV, the best region or the combination per result, maxcond 0.2, control regions
left out, prompt / stable widths 1e-11 / 1e-25 GeV.
"""

import json
import sys
import time
from pathlib import Path

from smodels.base import smodelsLogging
from smodels.base.model import Model
from smodels.base.physicsUnits import GeV, fb
from smodels.decomposition import decomposer
from smodels.experiment.databaseObj import Database
from smodels.installation import version
from smodels.matching.theoryPrediction import TheoryPredictionList, theoryPredictionsFor
from smodels.share.models.mssm import BSMList
from smodels.share.models.SMparticles import SMList
from smodels.tools.particlesLoader import getParticlesFromSLHA


def number(value, unit=fb):  # noqa: ANN001, ANN201
    if value is None:
        return None
    try:
        return float(value.asNumber(unit))
    except AttributeError:
        return float(value)


def main() -> None:
    smodelsLogging.setLogLevel("error")
    database_dir, out_dir, *files = sys.argv[1:]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    database = Database(database_dir)
    for path in files:
        start = time.time()
        text = Path(path).read_text().upper()
        own = "QNUMBERS" in text and "MASS" in text
        bsm = getParticlesFromSLHA(path) if own else BSMList
        model = Model(BSMparticles=bsm, SMparticles=SMList)
        model.updateParticles(inputFile=path, promptWidth=1e-11 * GeV, stableWidth=1e-25 * GeV)
        topologies = decomposer.decompose(model, sigmacut=0.005 * fb, massCompress=True,
                                          invisibleCompress=True, minmassgap=5 * GeV)
        found = theoryPredictionsFor(database, topologies, useBestDataset=True,
                                     combinedResults=True)
        kept = TheoryPredictionList(found, 0.2)._theoryPredictions
        records = []
        for tp in kept:
            if "CR" in Path(tp.dataset.path).name:
                continue
            kind = tp.dataType()
            dataset = (None if kind == "upperLimit" else "(combined)" if kind == "combined"
                       else tp.dataset.dataInfo.dataId)
            records.append({
                "analysis": tp.analysisId(), "dataset": dataset, "dataType": kind,
                "txnames": sorted(t.txName for t in tp.txnames),
                "xsec_fb": number(tp.xsection), "r_obs": tp.getRValue(),
                "r_exp": tp.getRValue(expected=True),
                "upper_limit_fb": number(tp.getUpperLimit()),
            })
        name = Path(path).stem
        with (Path(out_dir) / f"{name}.json").open("w") as handle:
            json.dump({"slha": Path(path).name, "smodels_version": version(),
                       "database_version": database.databaseVersion,
                       "smodels_seconds": round(time.time() - start, 3),
                       "predictions": records}, handle, indent=1)
        print(f"{name}: {len(records)} predictions", flush=True)


if __name__ == "__main__":
    main()
