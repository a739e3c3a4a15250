"""Provider clients: one module per remote image API, all behind `providers.base.Provider`."""

from fluxbot.providers.base import (
    ErrorKind,
    Image,
    JobRequest,
    Provider,
    ProviderError,
    TaskState,
    TaskStatus,
)

__all__ = ["ErrorKind", "Image", "JobRequest", "Provider", "ProviderError", "TaskState", "TaskStatus"]
