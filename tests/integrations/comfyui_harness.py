"""ComfyUI, emulated for the node pack's tests (ComfyUI itself cannot be installed here).

- ``load_pack`` imports ``integrations/comfyui`` the way ComfyUI's ``nodes.load_custom_node`` does: the
  folder's ``__init__.py`` by file location, under the folder's path (dots replaced by ``_x_``) as module
  name, put in ``sys.modules`` before it runs; the mappings are then read off the module.
- ``fake_comfyui_modules`` stands in for the parts of ComfyUI the pack touches: ``folder_paths`` over a
  ComfyUI-like base folder, ``comfy.utils.ProgressBar`` and ``comfy.model_management``.
- ``core_nodes`` are stand-ins for the three built-in nodes the example workflows use (Load Image, Save
  Image, Preview Any), with the built-ins' input names and ComfyUI's image conventions.
- ``run_prompt`` validates and runs an API-format prompt as ComfyUI's executor does: links are
  ``[node_id, output_index]``, nodes run in topological order under ``torch.inference_mode()``, a node
  returning ``{"ui": ..., "result": ...}`` passes ``result`` on.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "integrations" / "comfyui"
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}
SUPPORTED_PT_EXTENSIONS = {".ckpt", ".pt", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}  # ComfyUI's list


def load_pack(module_name: str | None = None) -> ModuleType:
    """Import the pack as ComfyUI's loader does → the module (``NODE_CLASS_MAPPINGS`` on it)."""
    name = module_name or str(PACK).replace(".", "_x_")
    spec = importlib.util.spec_from_file_location(name, PACK / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ----- ComfyUI's modules ---------------------------------------------------------------------------
def fake_comfyui_modules(base: Path) -> dict[str, ModuleType]:
    """``folder_paths``, ``comfy``, ``comfy.utils`` and ``comfy.model_management`` for a ComfyUI at ``base``.

    ``comfy.utils.ProgressBar`` records every update in ``comfy.utils.updates``; the interrupt check counts
    its calls in ``comfy.model_management.checks``.
    """
    import torch

    models = base / "models"
    folder_paths = ModuleType("folder_paths")
    folder_paths.base_path = str(base)
    folder_paths.models_dir = str(models)
    folder_paths.folder_names_and_paths = {
        "checkpoints": ([str(models / "checkpoints")], SUPPORTED_PT_EXTENSIONS),
        "loras": ([str(models / "loras")], SUPPORTED_PT_EXTENSIONS),
        "diffusion_models": (
            [str(models / "unet"), str(models / "diffusion_models")],
            SUPPORTED_PT_EXTENSIONS,
        ),
        "diffusers": ([str(models / "diffusers")], ["folder"]),
    }

    def map_legacy(kind: str) -> str:
        return {"unet": "diffusion_models"}.get(kind, kind)

    def get_folder_paths(kind: str) -> list[str]:
        return list(folder_paths.folder_names_and_paths[map_legacy(kind)][0])

    def get_filename_list(kind: str) -> list[str]:
        folders, extensions = folder_paths.folder_names_and_paths[map_legacy(kind)]
        names = set()
        for folder in folders:
            for root, _, files in os.walk(folder, followlinks=True):
                for file in files:
                    if os.path.splitext(file)[1].lower() in extensions or not extensions:
                        names.add(os.path.relpath(os.path.join(root, file), folder))
        return sorted(names)

    def get_full_path(kind: str, filename: str) -> str | None:
        for folder in get_folder_paths(kind):
            candidate = os.path.join(folder, filename)
            if os.path.isfile(candidate):
                return candidate
        return None

    folder_paths.get_folder_paths = get_folder_paths
    folder_paths.get_filename_list = get_filename_list
    folder_paths.get_full_path = get_full_path
    folder_paths.get_input_directory = lambda: str(base / "input")

    comfy = ModuleType("comfy")
    utils = ModuleType("comfy.utils")
    utils.updates = []

    class ProgressBar:
        def __init__(self, total: float) -> None:
            self.total, self.current = total, 0.0

        def update_absolute(self, value: float, total: float | None = None, preview: Any = None) -> None:
            self.total = total if total is not None else self.total
            self.current = min(value, self.total)
            utils.updates.append((self.current, self.total))

        def update(self, value: float) -> None:
            self.update_absolute(self.current + value)

    utils.ProgressBar = ProgressBar
    management = ModuleType("comfy.model_management")
    management.checks = 0

    def throw_exception_if_processing_interrupted() -> None:
        management.checks += 1

    management.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
    management.get_torch_device = lambda: torch.device("cpu")
    comfy.utils, comfy.model_management = utils, management
    return {
        "folder_paths": folder_paths,
        "comfy": comfy,
        "comfy.utils": utils,
        "comfy.model_management": management,
    }


# ----- ComfyUI's built-in nodes the workflows use --------------------------------------------------
def load_image_file(path: Path) -> Any:
    """An image file as ComfyUI's Load Image gives it: EXIF-rotated RGB, float32 / 255, shape 1×H×W×3."""
    import numpy as np
    import torch
    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    return torch.from_numpy(np.array(image).astype(np.float32) / 255.0)[None]


def core_nodes(input_dir: Path, record: SimpleNamespace) -> dict[str, type]:
    """Stand-ins for LoadImage, SaveImage and PreviewAny; what the output nodes get lands on ``record``."""
    record.saved, record.previews = [], []

    class LoadImage:
        @classmethod
        def INPUT_TYPES(cls) -> dict[str, Any]:
            files = sorted(p.name for p in input_dir.iterdir() if p.is_file())
            return {"required": {"image": (files, {"image_upload": True})}}

        RETURN_TYPES = ("IMAGE", "MASK")
        FUNCTION = "load_image"
        CATEGORY = "image"

        def load_image(self, image: str) -> tuple[Any, Any]:
            import torch

            pixels = load_image_file(input_dir / image)
            return pixels, torch.zeros(pixels.shape[:3])

    class SaveImage:
        @classmethod
        def INPUT_TYPES(cls) -> dict[str, Any]:
            return {"required": {"images": ("IMAGE",), "filename_prefix": ("STRING", {"default": "ComfyUI"})}}

        RETURN_TYPES = ()
        OUTPUT_NODE = True
        FUNCTION = "save_images"
        CATEGORY = "image"

        def save_images(self, images: Any, filename_prefix: str = "ComfyUI") -> dict[str, Any]:
            record.saved.append((filename_prefix, images))
            return {
                "ui": {"images": [{"filename": f"{filename_prefix}_{i:05}_.png"} for i in range(len(images))]}
            }

    class PreviewAny:
        @classmethod
        def INPUT_TYPES(cls) -> dict[str, Any]:
            return {"required": {"source": ("*", {})}}

        RETURN_TYPES = ()
        OUTPUT_NODE = True
        FUNCTION = "main"
        CATEGORY = "utils"

        def main(self, source: Any = None) -> dict[str, Any]:
            record.previews.append(source)
            return {"ui": {"text": [str(source)]}}

    return {"LoadImage": LoadImage, "SaveImage": SaveImage, "PreviewAny": PreviewAny}


# ----- the executor --------------------------------------------------------------------------------
def is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    )


def input_specs(cls: type) -> dict[str, tuple[Any, dict[str, Any]]]:
    """Every declared input (required, then optional) → (type or choices, options)."""
    declared = cls.INPUT_TYPES()
    out = {}
    for section in ("required", "optional"):
        for name, entry in declared.get(section, {}).items():
            out[name] = (entry[0], entry[1] if len(entry) > 1 else {})
    return out


def validate_prompt(prompt: dict[str, Any], classes: dict[str, type]) -> None:
    """What ComfyUI checks before it runs a prompt: known classes, required inputs, link types, widget values."""
    for node_id, node in prompt.items():
        cls = classes[node["class_type"]]
        specs, required = input_specs(cls), cls.INPUT_TYPES()["required"]
        missing = [name for name in required if name not in node["inputs"]]
        assert not missing, f"node {node_id}: required inputs missing: {missing}"
        for name, value in node["inputs"].items():
            assert name in specs, f"node {node_id}: {node['class_type']} has no input {name!r}"
            kind, options = specs[name]
            if is_link(value):
                source = prompt[value[0]]
                produced = classes[source["class_type"]].RETURN_TYPES[value[1]]
                assert kind in (produced, "*"), f"node {node_id}.{name}: {produced} linked to a {kind} input"
            elif isinstance(kind, list):
                assert value in kind, f"node {node_id}.{name}: {value!r} is not one of {kind}"
            elif kind in ("INT", "FLOAT"):
                assert options.get("min", value) <= value <= options.get("max", value), f"{node_id}.{name}"
            elif kind == "STRING":
                assert isinstance(value, str), f"node {node_id}.{name}: {value!r} is not a string"
            else:
                raise AssertionError(f"node {node_id}.{name}: a {kind} input needs a link, got {value!r}")


def topological_order(prompt: dict[str, Any]) -> list[str]:
    """Node ids so that every node comes after the nodes it takes inputs from (ties by id)."""
    needs = {nid: {v[0] for v in node["inputs"].values() if is_link(v)} for nid, node in prompt.items()}
    order: list[str] = []
    while needs:
        ready = sorted((nid for nid, deps in needs.items() if deps <= set(order)), key=int)
        assert ready, f"the prompt has a cycle among {sorted(needs)}"
        order.append(ready[0])
        del needs[ready[0]]
    return order


def run_prompt(
    prompt: dict[str, Any], classes: dict[str, type], on_node: Callable[[str], None] | None = None
) -> dict[str, tuple[Any, ...]]:
    """Run an API-format prompt → each node's outputs."""
    import torch

    validate_prompt(prompt, classes)
    outputs: dict[str, tuple[Any, ...]] = {}
    with torch.inference_mode():
        for node_id in topological_order(prompt):
            node = prompt[node_id]
            cls = classes[node["class_type"]]
            kwargs = {
                name: outputs[value[0]][value[1]] if is_link(value) else value
                for name, value in node["inputs"].items()
            }
            result = getattr(cls(), cls.FUNCTION)(**kwargs)
            if isinstance(result, dict):
                result = result.get("result", ())
            outputs[node_id] = tuple(result)
            if on_node is not None:
                on_node(node_id)
    return outputs


def ui_to_api(graph: dict[str, Any], classes: dict[str, type]) -> dict[str, Any]:
    """A UI-format workflow → the API prompt ComfyUI's front end sends for it.

    Widget values are listed in input order; an INT with ``control_after_generate`` is followed by that
    control's value, and an ``image_upload`` combo by the upload button's; neither goes into the prompt.
    """
    links = {link[0]: link for link in graph["links"]}
    prompt = {}
    for node in graph["nodes"]:
        cls = classes[node["type"]]
        values = iter(node.get("widgets_values", []))
        linked = {
            entry["name"]: links[entry["link"]] for entry in node["inputs"] if entry.get("link") is not None
        }
        inputs: dict[str, Any] = {}
        for name, (kind, options) in input_specs(cls).items():
            if name in linked:
                inputs[name] = [str(linked[name][1]), linked[name][2]]
            elif isinstance(kind, list) or kind in WIDGET_TYPES:
                inputs[name] = next(values)
                if options.get("control_after_generate") or options.get("image_upload"):
                    next(values)
        assert next(values, None) is None, f"node {node['id']}: more widget values than widgets"
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt
