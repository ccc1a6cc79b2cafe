rule prepare_data:
    """Generate (built-in) or download-and-prepare a tfds dataset once, before any tune job reads it."""
    output:
        touch(f"{config['data_dir']}/{{dataset}}.prepared"),
    log:
        "logs/prepare_data/{dataset}.log",
    conda:
        "../envs/study.yaml"
    params:
        data_dir=folder_of_output,
        manual_dir=config["manual_dir"],
    script:
        "../workflow/scripts/prepare_data.py"


# On a cluster it runs on the login node: compute nodes often have no internet, and tfds downloads.
localrules:
    prepare_data,
