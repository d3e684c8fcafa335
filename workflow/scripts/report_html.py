"""Rule report_html: every report Markdown file of the run as a standalone HTML page (figures
embedded), and the run's configuration: the pages `snakemake --report` shows."""

from pathlib import Path

from instruct_pt.common import setup_logging
from instruct_pt.reports.pages import config_page, markdown_page

setup_logging(snakemake.log[0])
pages = {Path(p).stem: p for p in snakemake.output}
for md in snakemake.input.md:
    markdown_page(md, pages[Path(md).stem])
config_page(dict(snakemake.params.config), snakemake.params.configfiles, snakemake.output.config)
