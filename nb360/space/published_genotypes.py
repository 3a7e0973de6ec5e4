"""Published DARTS-space genotypes by name, with their sources (the data behind `nb360.space.darts.PUBLISHED`).

Plain data, no imports: (normal pairs, reduce pairs) of (op, input node) as the sources write them.
"""

from __future__ import annotations

Cells = list[tuple[str, int]]

_QUARK0 = ("quark0/darts cnn/genotypes.py (DARTS_V1 / DARTS_V2; the file at commit 8876e79 defines only `DARTS`, "
           "equal to DARTS_V1)")
_NB360 = "rtu715/NAS-Bench-360@440f85f {path}, key {key!r} (seed 2, the uncommented entry)"

# name -> ((normal pairs, reduce pairs), source). The NB360 entries are the genotypes NAS-Bench-360's GAEA
# PC-DARTS searches found and its evaluation scripts retrain (the "DARTS / GAEA" row); their reduction cells are unused on dense tasks.
RAW: dict[str, tuple[tuple[Cells, Cells], str]] = {
    "DARTS_V1": (([("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
                   ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
                  [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
                   ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)]), _QUARK0),
    "DARTS_V2": (([("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
                   ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
                  [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
                   ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)]), _QUARK0),
    "NB360_GAEA_cifar100": ((
        [("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 2), ("dil_conv_5x5", 1), ("sep_conv_5x5", 3),
         ("sep_conv_5x5", 2), ("sep_conv_5x5", 2), ("sep_conv_5x5", 3)],
        [("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("dil_conv_5x5", 2), ("dil_conv_5x5", 1), ("dil_conv_3x3", 2),
         ("sep_conv_5x5", 3), ("sep_conv_3x3", 4), ("dil_conv_5x5", 2)]),
        _NB360.format(path="darts/gaea/eval/searched_genotypes.py", key="cifar100")),
    "NB360_GAEA_spherical": ((
        [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("avg_pool_3x3", 0), ("max_pool_3x3", 2), ("max_pool_3x3", 3),
         ("max_pool_3x3", 2), ("max_pool_3x3", 0), ("max_pool_3x3", 2)],
        [("avg_pool_3x3", 1), ("skip_connect", 0), ("max_pool_3x3", 1), ("dil_conv_5x5", 0), ("max_pool_3x3", 1),
         ("max_pool_3x3", 0), ("max_pool_3x3", 1), ("dil_conv_5x5", 0)]),
        _NB360.format(path="darts/gaea/eval/searched_genotypes.py", key="scifar100")),
    "NB360_GAEA_ninapro": ((
        [("sep_conv_5x5", 1), ("dil_conv_5x5", 0), ("dil_conv_5x5", 2), ("sep_conv_3x3", 1), ("sep_conv_5x5", 2),
         ("max_pool_3x3", 3), ("dil_conv_5x5", 4), ("sep_conv_5x5", 1)],
        [("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("max_pool_3x3", 2), ("avg_pool_3x3", 0), ("max_pool_3x3", 0),
         ("sep_conv_3x3", 2), ("sep_conv_5x5", 3), ("max_pool_3x3", 4)]),
        _NB360.format(path="darts/gaea/eval/searched_genotypes.py", key="ninapro")),
    "NB360_GAEA_fsd50k": ((
        [("sep_conv_5x5", 0), ("sep_conv_5x5", 1), ("avg_pool_3x3", 1), ("max_pool_3x3", 2), ("max_pool_3x3", 0),
         ("sep_conv_5x5", 3), ("avg_pool_3x3", 0), ("max_pool_3x3", 4)],
        [("max_pool_3x3", 0), ("sep_conv_3x3", 1), ("max_pool_3x3", 0), ("skip_connect", 1), ("max_pool_3x3", 0),
         ("skip_connect", 1), ("max_pool_3x3", 0), ("sep_conv_3x3", 2)]),
        _NB360.format(path="darts/gaea/eval/searched_genotypes.py", key="audio")),
    "NB360_GAEA_ecg": ((
        [("dil_conv_5x5", 1), ("dil_conv_5x5", 0), ("dil_conv_5x5", 2), ("dil_conv_3x3", 0), ("dil_conv_5x5", 3),
         ("dil_conv_5x5", 2), ("dil_conv_5x5", 4), ("sep_conv_3x3", 0)],
        [("sep_conv_5x5", 1), ("sep_conv_5x5", 0), ("dil_conv_5x5", 2), ("sep_conv_5x5", 0), ("dil_conv_5x5", 2),
         ("dil_conv_5x5", 3), ("dil_conv_5x5", 4), ("dil_conv_5x5", 3)]),
        _NB360.format(path="darts_1d/gaea/eval/searched_genotypes.py", key="ECG")),
    "NB360_GAEA_satellite": ((
        [("dil_conv_5x5", 0), ("dil_conv_5x5", 1), ("dil_conv_5x5", 0), ("dil_conv_5x5", 2), ("dil_conv_5x5", 0),
         ("avg_pool_3x3", 3), ("sep_conv_5x5", 2), ("dil_conv_5x5", 0)],
        [("dil_conv_3x3", 0), ("max_pool_3x3", 1), ("dil_conv_5x5", 2), ("avg_pool_3x3", 0), ("dil_conv_5x5", 3),
         ("avg_pool_3x3", 1), ("sep_conv_5x5", 3), ("dil_conv_5x5", 2)]),
        _NB360.format(path="darts_1d/gaea/eval/searched_genotypes.py", key="satellite")),
    "NB360_GAEA_deepsea": ((
        [("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("dil_conv_5x5", 0), ("sep_conv_3x3", 2), ("avg_pool_3x3", 0),
         ("sep_conv_3x3", 3), ("dil_conv_5x5", 0), ("dil_conv_3x3", 3)],
        [("skip_connect", 0), ("avg_pool_3x3", 1), ("skip_connect", 0), ("sep_conv_5x5", 1), ("skip_connect", 1),
         ("max_pool_3x3", 0), ("sep_conv_3x3", 0), ("avg_pool_3x3", 1)]),
        _NB360.format(path="darts_1d/gaea/eval/searched_genotypes.py", key="deepsea")),
    "NB360_GAEA_darcyflow": ((
        [("dil_conv_3x3", 1), ("dil_conv_3x3", 0), ("dil_conv_3x3", 2), ("dil_conv_3x3", 0), ("dil_conv_5x5", 3),
         ("sep_conv_5x5", 1), ("dil_conv_5x5", 4), ("max_pool_3x3", 1)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 4),
        "rtu715/NAS-Bench-360@440f85f darts/gaea-grid/model_def.py, task 'pde' (the uncommented `#seed 2` genotype)"),
    "NB360_GAEA_psicov": ((
        [("dil_conv_3x3", 0), ("skip_connect", 1), ("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_5x5", 2),
         ("dil_conv_5x5", 0), ("skip_connect", 0), ("dil_conv_3x3", 3)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 4),
        "rtu715/NAS-Bench-360@440f85f darts/gaea-grid/model_def.py, task 'protein' (the uncommented `#seed 2` "
        "genotype)"),
    "NB360_GAEA_cosmic": ((
        [("avg_pool_3x3", 1), ("sep_conv_3x3", 0), ("avg_pool_3x3", 1), ("avg_pool_3x3", 2), ("max_pool_3x3", 1),
         ("max_pool_3x3", 2), ("max_pool_3x3", 1), ("avg_pool_3x3", 3)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 4),
        "rtu715/NAS-Bench-360@440f85f darts/gaea-grid/model_def.py, task 'cosmic' (the uncommented genotype)"),
}

_E2RNAS = "yuezhixiong/NAS-Benchmark (the E2RNAS authors' code) {path}@{commit}, key {key!r}"
_E2RNAS_V1 = ("; found by DARTS_LBJ/fgsm_nop_min*.sh of the arXiv-v1 code: FGSM lower level, MGDA over validation "
              "loss and the `min`-constrained size, --unrolled (search-methods.md section 1.3)")
_E2RNAS_HEAD = ("; found by {script} of the HEAD code, E2RNAS ported to PC-DARTS: objectives acc, adv, nop, flp, MGDA, "
                "--constrain abs --constrain_min 3, --grad_norm l2, on CIFAR-10")
_V1_FILE = {"path": "DARTS/genotypes.py", "commit": "9d4d007"}
_PC_FILE = {"path": "PC-DARTS/genotypes.py", "commit": "ef3d6f0"}

# The E2RNAS authors' published genotypes (their repository's names in the sources). Which of them the paper's
# tables report is not established [uncertain]; the V1 ones are the "fgsm_nop_min" runs the reference names.
RAW.update({
    "E2RNAS_V1_cifar10": (
        ([("max_pool_3x3", 0), ("max_pool_3x3", 1), ("sep_conv_5x5", 0), ("max_pool_3x3", 1), ("skip_connect", 3),
          ("max_pool_3x3", 2), ("skip_connect", 4), ("max_pool_3x3", 2)],
         [("skip_connect", 1), ("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 0),
          ("sep_conv_3x3", 3), ("max_pool_3x3", 4), ("max_pool_3x3", 3)]),
        _E2RNAS.format(key="fgsm_nop_min", **_V1_FILE) + _E2RNAS_V1),
    "E2RNAS_V1_cifar100": (
        ([("sep_conv_3x3", 1), ("max_pool_3x3", 0), ("sep_conv_3x3", 1), ("max_pool_3x3", 0), ("dil_conv_5x5", 2),
          ("dil_conv_5x5", 1), ("skip_connect", 4), ("dil_conv_5x5", 1)],
         [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 2), ("sep_conv_5x5", 1), ("dil_conv_5x5", 2),
          ("dil_conv_5x5", 3), ("dil_conv_5x5", 4), ("dil_conv_5x5", 3)]),
        _E2RNAS.format(key="fgsm_nop_min_cifar100", **_V1_FILE) + _E2RNAS_V1),
    "E2RNAS_V1_svhn": (
        ([("skip_connect", 1), ("max_pool_3x3", 0), ("sep_conv_5x5", 2), ("sep_conv_3x3", 0), ("sep_conv_5x5", 1),
          ("avg_pool_3x3", 3), ("skip_connect", 4), ("avg_pool_3x3", 3)],
         [("dil_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2),
          ("sep_conv_5x5", 3), ("sep_conv_3x3", 3), ("avg_pool_3x3", 1)]),
        _E2RNAS.format(key="fgsm_nop_min_svhn", **_V1_FILE) + _E2RNAS_V1),
    "E2RNAS_PCDARTS_cifar10": (
        ([("avg_pool_3x3", 0), ("avg_pool_3x3", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 2), ("avg_pool_3x3", 2),
          ("avg_pool_3x3", 0), ("skip_connect", 0), ("dil_conv_3x3", 4)],
         [("avg_pool_3x3", 0), ("max_pool_3x3", 1), ("avg_pool_3x3", 0), ("dil_conv_5x5", 2), ("dil_conv_3x3", 0),
          ("skip_connect", 2), ("dil_conv_5x5", 2), ("sep_conv_3x3", 0)]),
        _E2RNAS.format(key="pcdarts_e2rnas", **_PC_FILE)
        + _E2RNAS_HEAD.format(script="PC-DARTS/pcdarts_e2rnas.sh (with --ood_lambda 1)")),
    "E2RNAS_PCDARTS_cifar10_outer": (
        ([("avg_pool_3x3", 0), ("avg_pool_3x3", 1), ("skip_connect", 0), ("skip_connect", 2), ("skip_connect", 0),
          ("max_pool_3x3", 2), ("skip_connect", 0), ("skip_connect", 2)],
         [("dil_conv_3x3", 0), ("max_pool_3x3", 1), ("avg_pool_3x3", 0), ("skip_connect", 2), ("avg_pool_3x3", 0),
          ("skip_connect", 2), ("sep_conv_5x5", 0), ("skip_connect", 2)]),
        _E2RNAS.format(key="pcdarts_e2rnas_outer", **_PC_FILE)
        + _E2RNAS_HEAD.format(script="PC-DARTS/pcdarts_e2rnas_outer.sh (no OOD term)")),
    "E2RNAS_PCDARTS_cifar10_L5": (
        ([("avg_pool_3x3", 0), ("skip_connect", 1), ("avg_pool_3x3", 0), ("skip_connect", 2), ("avg_pool_3x3", 0),
          ("max_pool_3x3", 3), ("skip_connect", 2), ("skip_connect", 0)],
         [("avg_pool_3x3", 0), ("max_pool_3x3", 1), ("avg_pool_3x3", 0), ("dil_conv_5x5", 2), ("sep_conv_5x5", 0),
          ("dil_conv_5x5", 2), ("dil_conv_5x5", 2), ("dil_conv_5x5", 0)]),
        _E2RNAS.format(key="pcdarts_e2rnas_L5", **_PC_FILE)
        + _E2RNAS_HEAD.format(script="PC-DARTS/pcdarts_e2rnas_L5.sh (--constrain_min 5)")),
})
