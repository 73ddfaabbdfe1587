"""The open world: species added to a trained model without retraining, and "unknown" for the others.

    add_species.py     add-species: a new run = the old model + head rows for new species (workflow)
    new_rows.py        the head rows: imprinted, probe with old rows frozen, or all rows refitted
    combined_data.py   the new run's data: a tree of links to the old and the new species folders
    calibrate.py       eval --unknown figures and calibrate-unknown (workflow)
    report.py          those figures as text: report.md section, terminal rows, the calibrate table
    scores.py          open-set scores, AUROC, the threshold that keeps 95% of known images
    outputs.py         probabilities, logits and pooled features of a model over images
    unknown_images.py  the images of an --unknown folder
    rule.py            the stored "unknown" rule: RUN/unknown.json and exported files' metadata
    commands.py        the add-species and calibrate-unknown commands (added to the CLI by cli.py)
"""
