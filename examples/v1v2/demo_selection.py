"""How many latents do the V1/V2 recordings support? 5-fold cross-validation of DLAG-SSM latent counts on the
training trials of one split (n_across and n_within each from 1 to 3), scored by held-out-neuron co-smoothing on
held-out training trials. The one-standard-error choice and the published 2 + 2 size are then scored on the split's
test trials by the co-smoothing protocol, beside the training-PSTH and training-mean baselines, each labelled.

    uv run python examples/v1v2/demo_selection.py --seed 0 --workers 2 --out-dir outputs/v1v2/selection
"""

from mbrila.experiments.selection_cli import v1v2_selection_demo

if __name__ == "__main__":
    v1v2_selection_demo(__doc__)
