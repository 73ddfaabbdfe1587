"""`keras-birds report`: the study as one page, generated from what the other verbs wrote.

    collect.py        run directories (and the comparison, export and eval files next to them) -> plain data
    dataset.py        the data set's overview and the `clean` audit -> plain data
    sections.py       plain data -> the study's sections, in its order (sections_eval.py: those from eval
                      and export files); blocks.py: what a section is made of, renderer-agnostic
    plots.py          matplotlib figures and downscaled thumbnails, as PNG/JPEG bytes
    html.py           sections -> one self-contained report.html (images inline as data: URIs, no script)
    markdown.py       sections -> report.md, its images written beside it
    study.py          write_report(): the workflow; command.py: the click command cli.py adds
    publish.py        the page's folder written beside OUT, then swapped in whole

It reads files only: no model is loaded and nothing is retrained. A piece a run lacks is "not measured".
"""
