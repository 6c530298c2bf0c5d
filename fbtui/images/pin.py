"""The base image pinned by ID: lab.yaml's build.base_image_id.

A name like pytorch/pytorch:2.13.0 (or the stand-in scripts/engine makes) can point at another image
tomorrow; the base layer's tag hashes the name, not the image. `base_image: NAME@sha256:DIGEST` pins a
registry image (the engine resolves it). `base_image_id: sha256:ID` pins any image, registry or not,
by the ID the engine gives it: the build refuses when the engine's image for the name has another ID,
and the classic builder then starts FROM the ID itself, so a name moved mid-build changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fbtui.errors import ConfigError

if TYPE_CHECKING:
    import docker

    from fbtui.images.plan import Layer
    from fbtui.lab import Lab


def engine_id(client: docker.DockerClient, ref: str) -> str | None:
    try:
        return str(client.api.inspect_image(ref)["Id"])
    except Exception as e:
        if type(e).__name__ in ("ImageNotFound", "NotFound") or getattr(e, "status_code", None) == 404:
            return None
        raise


def base_pin(lab: Lab, layer: Layer) -> str | None:
    """The pinned ID for a base layer, when lab.yaml pins the image it starts from (an environment's
    own base_image is not what build.base_image_id pins)."""
    pin = lab.config.build.base_image_id
    if layer.kind == "base" and pin and layer.build_args.get("BASE_IMAGE") == lab.config.build.base_image:
        return pin
    return None


def pin_line(image_id: str) -> str:
    return f"base_image_id: {image_id}"


def check_base(client: docker.DockerClient, lab: Lab, layer: Layer, host: str) -> str | None:
    """The pinned ID when the engine's image for the base name has it; refuses in one line otherwise.
    None when nothing is pinned."""
    pin = base_pin(lab, layer)
    if pin is None:
        return None
    ref = layer.build_args["BASE_IMAGE"]
    where = {"file": "lab.yaml", "line": lab.source.line_of(("build", "base_image_id")), "key": "build.base_image_id"}
    have = engine_id(client, ref)
    if have is None:
        try:  # a registry image not pulled yet: the pull is checked like any other
            client.api.pull(ref)
            have = engine_id(client, ref)
        except Exception as e:
            msg = (getattr(e, "explanation", None) or str(e)).splitlines()
            raise ConfigError(f"the pinned base image {ref} is not on {host} and could not be pulled "
                              f"({(msg or ['?'])[0][:160]})", **where,
                              hint="make or pull it (the stand-in: scripts/engine), then check its ID: "
                                   f"docker image inspect --format '{{{{.Id}}}}' {ref}") from e
    if have != pin:
        raise ConfigError(f"{ref} on {host} is {str(have)[:19]}, not the pinned {pin[:19]}: "
                          "refusing to build on another image", **where,
                          hint=f"if {ref} is the image you want now, pin it in lab.yaml: {pin_line(str(have))}")
    return pin
