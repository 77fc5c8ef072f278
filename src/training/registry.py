"""The trainer registry: `@register_workflow` adds a trainer class under its name.

Config files select a trainer by that name (``trainer: IrisClassifier``). Registering a second,
different class under a taken name is refused; asking for an unknown name fails with the list
of known ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, overload

from src.training.base import Trainer
from src.training.errors import DuplicateTrainerError, UnknownTrainerError

T = TypeVar("T", bound="type[Trainer]")

_REGISTRY: dict[str, type[Trainer]] = {}


@overload
def register_workflow(cls: T, *, name: str | None = None) -> T: ...
@overload
def register_workflow(cls: None = None, *, name: str | None = None) -> Callable[[T], T]: ...


def register_workflow(cls: T | None = None, *, name: str | None = None) -> T | Callable[[T], T]:
    """Class decorator registering a trainer under ``name`` (default: the class name).

    Use as ``@register_workflow`` or ``@register_workflow(name="MyTrainer")``.
    """

    def decorate(trainer_cls: T) -> T:
        if not (isinstance(trainer_cls, type) and issubclass(trainer_cls, Trainer)):
            raise TypeError(f"{trainer_cls!r} is not a subclass of src.training.base.Trainer")
        key = name or trainer_cls.__name__
        existing = _REGISTRY.get(key)
        if existing is not None and existing is not trainer_cls:
            raise DuplicateTrainerError(
                f"trainer name {key!r} is already registered by "
                f"{existing.__module__}.{existing.__qualname__}"
            )
        _REGISTRY[key] = trainer_cls
        trainer_cls.registered_name = key
        return trainer_cls

    if cls is not None:
        return decorate(cls)
    return decorate


def unregister_workflow(name: str) -> None:
    """Remove a registration (for tests and interactive sessions)."""
    _REGISTRY.pop(name, None)


def _load_builtin_trainers() -> None:
    # Importing the package registers every trainer module in src/training/trainers/.
    import src.training.trainers  # noqa: F401 - imported for its registration side effect


def known_trainers() -> list[str]:
    """Sorted names of all registered trainers (built-ins included)."""
    _load_builtin_trainers()
    return sorted(_REGISTRY)


def get_trainer_class(name: str) -> type[Trainer]:
    """The trainer class registered as ``name``; `UnknownTrainerError` lists the known ones."""
    _load_builtin_trainers()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownTrainerError(
            "trainer", f"unknown trainer {name!r}; known trainers: {', '.join(sorted(_REGISTRY))}"
        ) from None
