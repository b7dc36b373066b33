"""The ComfyUI node pack as ComfyUI sees it before running anything: how it imports, what each node declares,
its registry metadata, its example workflows and its README."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import sys
import tomllib
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from comfyui_harness import PACK, input_specs, load_pack, ui_to_api

WORKFLOWS = sorted(p.stem for p in (PACK / "api_workflows").glob("*.json"))


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` → its content hash (folders and links by kind), to see any change."""
    out = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            out[key] = f"link:{path.readlink()}"
        elif path.is_dir():
            out[key] = "dir"
        else:
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def declared(mappings: dict[str, type], names: dict[str, str]) -> None:
    """Every node declares what ComfyUI reads, consistently."""
    assert mappings and set(names) == set(mappings)
    for key, cls in mappings.items():
        where = f"{key}"
        assert key.startswith("MegaStyle") and names[key].startswith("MegaStyle"), where
        types = cls.INPUT_TYPES()
        assert isinstance(types, dict) and "required" in types, where
        assert set(types) <= {"required", "optional", "hidden"}, where
        for section in ("required", "optional"):
            for name, entry in types.get(section, {}).items():
                assert isinstance(entry, tuple) and 1 <= len(entry) <= 2, f"{where}.{name}"
                kind, options = entry[0], entry[1] if len(entry) > 1 else {}
                assert isinstance(kind, (str, list)) and isinstance(options, dict), f"{where}.{name}"
                if isinstance(kind, list) and "default" in options:
                    assert options["default"] in kind, f"{where}.{name}: default not among the choices"
                if kind in ("INT", "FLOAT"):
                    assert options["min"] <= options["default"] <= options["max"], f"{where}.{name}"
        assert isinstance(cls.RETURN_TYPES, tuple) and all(isinstance(t, str) for t in cls.RETURN_TYPES), (
            where
        )
        assert isinstance(cls.RETURN_NAMES, tuple) and len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES), where
        if hasattr(cls, "OUTPUT_IS_LIST"):
            assert len(cls.OUTPUT_IS_LIST) == len(cls.RETURN_TYPES), where
        assert isinstance(cls.FUNCTION, str) and callable(getattr(cls, cls.FUNCTION, None)), where
        assert isinstance(cls.CATEGORY, str) and cls.CATEGORY.startswith("MegaStyle"), where
        assert isinstance(names[key], str) and names[key].strip(), where
        assert getattr(cls, "DESCRIPTION", "").strip(), where


def test_every_node_declares_what_comfyui_reads_outside_comfyui(pack: ModuleType) -> None:
    declared(pack.NODE_CLASS_MAPPINGS, pack.NODE_DISPLAY_NAME_MAPPINGS)
    loader = pack.NODE_CLASS_MAPPINGS["MegaStyleFluxLoader"].INPUT_TYPES()
    assert loader["required"]["flux_folder"][0] == "STRING"  # no ComfyUI: plain paths


def test_every_node_declares_what_comfyui_reads_inside_comfyui(
    comfyui: SimpleNamespace, pack: ModuleType
) -> None:
    mappings = pack.NODE_CLASS_MAPPINGS
    declared(mappings, pack.NODE_DISPLAY_NAME_MAPPINGS)
    # The models where the README puts them are offered by name, as ComfyUI's own loaders offer theirs.
    loader = mappings["MegaStyleFluxLoader"].INPUT_TYPES()
    assert loader["required"]["flux_folder"][0] == ["FLUX.1-dev"]
    assert loader["optional"]["transformer_file"][0] == ["none"]
    assert mappings["MegaStyleLoraLoader"].INPUT_TYPES()["required"]["lora"][0] == [
        "megastyle_flux.safetensors"
    ]
    encoder = mappings["MegaStyleEncoderLoader"].INPUT_TYPES()
    assert encoder["required"]["encoder"][0] == ["megastyle_encoder.pth", "siglip-so400m-patch14-384"]
    assert encoder["optional"]["base_model"][0] == ["none", "siglip-so400m-patch14-384"]
    seed = mappings["MegaStyleSampler"].INPUT_TYPES()["required"]["seed"][1]
    assert seed["control_after_generate"] and seed["max"] == 0xFFFFFFFFFFFFFFFF


def test_import_copies_nothing_downloads_nothing_and_connects_nowhere(
    comfyui: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("the node pack must not use the network on import")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    watched = (PACK, comfyui.base, workdir)
    before = [snapshot(folder) for folder in watched]
    name = str(PACK).replace(".", "_x_")
    try:
        module = load_pack(name)
        assert set(module.NODE_CLASS_MAPPINGS) == set(module.NODE_DISPLAY_NAME_MAPPINGS)
        for cls in module.NODE_CLASS_MAPPINGS.values():  # ComfyUI lists every node's inputs at start-up
            cls.INPUT_TYPES()
    finally:
        for key in [k for k in sys.modules if k.startswith(name)]:
            del sys.modules[key]
    assert [snapshot(folder) for folder in watched] == before
    assert attempts == []


def test_an_old_comfyui_naming_the_module_after_its_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    module = load_pack("comfyui-megastyle")  # older ComfyUI: the folder's name
    assert "MegaStyleSampler" in module.NODE_CLASS_MAPPINGS
    for key in [k for k in sys.modules if k.startswith("comfyui-megastyle")]:
        del sys.modules[key]
    # A folder named like the library would hide it: refused with the fix in the message.
    import megastyle

    monkeypatch.setitem(sys.modules, "megastyle", megastyle)
    with pytest.raises(ImportError, match="rename it"):
        load_pack("megastyle")


def test_registry_metadata() -> None:
    project = tomllib.loads((PACK / "pyproject.toml").read_text(encoding="utf-8"))
    meta = project["project"]
    assert "comfyui" not in meta["name"].lower()
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*([-_.][A-Za-z0-9]+)*", meta["name"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"])
    assert meta["license"] == {"text": "Apache-2.0"}
    assert meta["dependencies"] == ["megastyle"]
    assert meta["urls"]["Repository"].startswith("https://")
    comfy = project["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"] and "Icon" in comfy


@pytest.mark.parametrize("name", WORKFLOWS)
def test_the_ui_graph_is_the_api_prompt(name: str, comfyui: SimpleNamespace, pack: ModuleType) -> None:
    """Both formats of each example hold the same nodes, links and settings."""
    classes = {**comfyui.core, **pack.NODE_CLASS_MAPPINGS}
    graph = json.loads((PACK / "example_workflows" / f"{name}.json").read_text(encoding="utf-8"))
    prompt = json.loads((PACK / "api_workflows" / f"{name}.json").read_text(encoding="utf-8"))
    assert ui_to_api(graph, classes) == {
        k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in prompt.items()
    }
    for link_id, source, slot, target, target_slot, kind in graph["links"]:
        nodes = {node["id"]: node for node in graph["nodes"]}
        assert (
            nodes[source]["outputs"][slot]["type"] == kind
            and link_id in nodes[source]["outputs"][slot]["links"]
        )
        assert nodes[target]["inputs"][target_slot]["link"] == link_id
    used = {node["class_type"] for node in prompt.values()}
    assert used <= set(classes)
    assert {"MegaStyleFluxLoader", "MegaStyleLoraLoader"} <= used


def test_the_examples_use_every_node(pack: ModuleType) -> None:
    used = set()
    for name in WORKFLOWS:
        prompt = json.loads((PACK / "api_workflows" / f"{name}.json").read_text(encoding="utf-8"))
        used |= {node["class_type"] for node in prompt.values()}
    assert set(pack.NODE_CLASS_MAPPINGS) <= used


def test_every_input_of_the_examples_is_declared(comfyui: SimpleNamespace, pack: ModuleType) -> None:
    for name in WORKFLOWS:
        prompt = json.loads((PACK / "api_workflows" / f"{name}.json").read_text(encoding="utf-8"))
        for node in prompt.values():
            cls = {**comfyui.core, **pack.NODE_CLASS_MAPPINGS}[node["class_type"]]
            assert set(node["inputs"]) <= set(input_specs(cls)), node["class_type"]


def test_readme_says_how_to_install_where_models_go_and_what_the_tests_do() -> None:
    readme = (PACK / "README.md").read_text(encoding="utf-8")
    for needed in (
        "custom_nodes",
        "pip install megastyle",
        "models/diffusers/",
        "models/unet/",
        "models/diffusion_models/",
        "models/loras/",
        "models/megastyle/",
        "example_workflows/",
        "api_workflows/",
        "emulate",
    ):
        assert needed in readme, needed
    for node in load_pack_names():
        assert node in readme, node


def load_pack_names() -> list[str]:
    text = (PACK / "nodes.py").read_text(encoding="utf-8")
    block = text[text.index("NODE_DISPLAY_NAME_MAPPINGS") :]
    return re.findall(r'": "([^"]+)"', block)
