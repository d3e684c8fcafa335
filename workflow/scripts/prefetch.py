"""Rules fetch_hub (one group of hub artefacts into the shared HF caches, with its record) and
prefetch (every group's record in one manifest)."""

from instruct_pt.common import read_json, setup_logging, write_json
from instruct_pt.data.prefetch import fetch

setup_logging(snakemake.log[0])
if snakemake.rule == "fetch_hub":
    write_json(
        snakemake.output[0],
        {"group": snakemake.wildcards.group, "artefacts": fetch(snakemake.params.artefacts)},
    )
else:  # prefetch: the manifest (empty where nothing is on the hub, e.g. miniature scale)
    write_json(
        snakemake.output[0],
        {"run": snakemake.params.run, "groups": [read_json(p) for p in sorted(snakemake.input)]},
    )
