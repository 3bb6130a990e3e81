"""The help texts of ``scratchnet train``'s flags (cli/train.py builds the parser from its flag table)."""

from __future__ import annotations

from scratchnet.training.diagnostics import DEFAULT_EVERY

RECIPE_HELP = (
    "starting settings: default (the best MLP found for the dataset; small when --backend loops), classic (the "
    "784-10-10 tutorial network), small (784-32-10), cnn (a convolutional network with batch norm and "
    "augmentation, for the best accuracy), cnn-quick (a smaller, faster one), cnn-small (one convolution, for "
    "--backend loops); for a language model (--data FILE.txt): microgpt (Karpathy's microgpt exactly, loops "
    "backend), gpt (nanoGPT's CPU Shakespeare configuration, untied output layer), names (makemore's Transformer, "
    "sized for 5 minutes); flags override them"
)
DATA_DIR_HELP = (
    "folder holding mnist/ and fashion-mnist/ (default: $SCRATCHNET_DATA_DIR, else the user cache, else download)"
)
OUT_HELP = (
    "model file (default: models/DATASET[-RECIPE][-BACKEND].json, or the next free name -2, -3, ... when a model "
    "is there; a folder: that name in it); an existing model is replaced only with --overwrite"
)
RESUME_HELP = "continue the run saved in CHECKPOINT, with its settings (--lr and --weight-decay may change)"
NO_CHECK_HELP = "skip the loops-vs-vectorized cross-check before training"
DATA_HELP = (
    "train on a CSV file (a 'label' column, the other columns numbers), a folder of class folders "
    "(PATH/CLASS/*.png) or an .npz (arrays x, y and optionally class_names) instead of --dataset"
)
TEST_FRACTION_HELP = (
    "without --test: hold out this part of --data for testing, stratified by class (default 0.2; 0: none)"
)
LABEL_COLUMN_HELP = "CSV: the label column's name (default 'label'), or its position (0 for the first column)"
IMAGE_SHAPE_HELP = (
    "CSV, .npz: the rows are images of this shape, C,H,W or H,W (default: 784 columns are 28x28, others a table "
    "of features)"
)
TABLE_HELP = "CSV, .npz: read the columns as a table of features, even 784 of them"
IMAGE_SIZE_HELP = "folder: resize every picture to H,W (default: the first picture's size, which all must have)"
LAYERS_HELP = (
    "any network in the compact notation instead of an MLP, e.g. 'conv(32, 3), relu, maxpool(2), flatten': the "
    "input and the output layer are added (docs/training.md)"
)
INIT_HELP = "weight initializer (default: he_normal for ReLU, glorot_normal otherwise)"
OPTIMIZER_HELP = (
    'the optimizer, or a JSON object of every option merged over the recipe\'s, e.g. \'{"type": "adam", '
    '"eps": 1e-7}\' or \'{"type": "rmsprop", "alpha": 0.9, "centered": true}\' (docs/training.md)'
)
TIME_DECAY_HELP = "inverse_time: lr / (1 + D * step) (--lr-decay is its old name)"
BATCH_HELP = "images per step (full: all of them, gradient descent)"
BACKEND_HELP = "loops: pure Python, slow (picks the small recipe when none is given)"
VALIDATION_HELP = "hold out the last N training images for validation (the first N in the classic recipe)"
FLIP_HELP = "mirror half the training images left to right (clothes yes, digits no)"
DIAGNOSTICS_HELP = (
    f"every N steps (default {DEFAULT_EVERY}), record each layer's activations (mean, std, saturated or dead part), "
    "each array's gradient std and each weight's update-to-data ratio into the history, and warn about a layer "
    "mostly dead or a ratio far from 1e-3 (scratchnet plot diagnostics draws them)"
)
CROP_HELP = "random crops: pad each training image by PX pixels of black, cut out its size at a random place (0..8)"
ROTATE_HELP = "rotate each training image by a random angle in [-DEG, DEG] (bilinear; 0..180)"
SCALE_HELP = "scale each training image by a random factor in [1 - S, 1 + S] (bilinear; S in [0, 1))"
ERASE_HELP = (
    "random erasing: with probability P, blank a random rectangle of each training image (2-40%% of its area, "
    "height/width 0.3 to 3.3)"
)
ERASE_NOISE_HELP = "fill --erase's rectangles with random pixels rather than black"
SMOOTHING_HELP = "the cross-entropy's label smoothing eps in [0, 1]: train towards 1 - eps + eps/K on the label"
