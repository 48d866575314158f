"""Tiny Qwen-Image: a Qwen2.5-VL text encoder (its last hidden states, the chat template's system prompt
dropped), an MMDiT over 2×2 patches of the Wan-style 16-channel VAE (pixel multiple 16), true CFG."""

from __future__ import annotations

from typing import Any

from inference.tiny.parts import TEXT_WIDTH, seeded, sharpen_posterior
from inference.tiny.tokenizers import qwen_tokenizer

__all__ = ["LATENT_CHANNELS", "MAX_LENGTH", "build"]

FOLDER = "tiny-qwenimage"
MODEL: dict[str, Any] = {
    "name": "tiny-qwenimage",
    "width": 128,
    "height": 128,
    "steps": 8,
    "guidance": 4.0,  # true CFG (the pipeline's true_cfg_scale), with a negative prompt
    "scheduler": "euler",
    "description": "Tiny random-weight Qwen-Image (noise, for tests)",
}

LATENT_CHANNELS = 16
#: Qwen-Image's prompt token limit (the pipeline's ``max_sequence_length``, at most 1024; it tokenizes that plus
#: the template's system prompt).
MAX_LENGTH = 1024


def text_encoder(tokenizer: Any) -> Any:
    """A two-layer Qwen2.5-VL with a one-block vision tower (the pipelines of Qwen-Image Edit show it images)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    heads = 4
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": TEXT_WIDTH,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": heads,
            "num_key_value_heads": 2,
            "max_position_embeddings": 2048,
            "bos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
            "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
            "pad_token_id": tokenizer.pad_token_id,
            # multimodal rotary sections (time, height, width) cover half the head dim
            "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [1, 1, 2]},
        },
        vision_config={
            "depth": 1,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": TEXT_WIDTH,
            "fullatt_block_indexes": [0],
        },
        image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tokenizer.convert_tokens_to_ids("<|vision_end|>"),
    )
    return Qwen2_5_VLForConditionalGeneration(config)


def build(seed: int = 0) -> Any:
    """A random-weight ``QwenImagePipeline``; the same ``seed`` gives the same weights."""
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )

    with seeded(seed):
        tokenizer = qwen_tokenizer(MAX_LENGTH)
        transformer = QwenImageTransformer2DModel(
            patch_size=2,
            in_channels=4 * LATENT_CHANNELS,
            out_channels=LATENT_CHANNELS,
            num_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=TEXT_WIDTH,
            axes_dims_rope=(4, 6, 6),  # sums to attention_head_dim
        )
        vae: Any = AutoencoderKLQwenImage(
            base_dim=8,
            z_dim=LATENT_CHANNELS,
            dim_mult=[1, 2, 4, 4],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],  # three halvings: ×8
        )
        sharpen_posterior(vae.quant_conv, LATENT_CHANNELS)
        # Qwen-Image's own schedule: shift from the image's token count, exponential time shift
        scheduler = FlowMatchEulerDiscreteScheduler(
            shift=1.0,
            use_dynamic_shifting=True,
            base_shift=0.5,
            max_shift=0.9,
            base_image_seq_len=256,
            max_image_seq_len=8192,
            time_shift_type="exponential",
            shift_terminal=0.02,
        )
        return QwenImagePipeline(
            scheduler=scheduler,
            vae=vae,
            text_encoder=text_encoder(tokenizer),
            tokenizer=tokenizer,
            transformer=transformer,
        )
