"""The embedded broker: topic metadata, data directory ownership, and (later) the Broker that
ties the metadata store, the LogManager and the coordinators together.

Layering (DESIGN.md section 3): broker sits above headwater.coordinator and headwater.log
and below headwater.server and headwater.cli.
"""

from headwater.broker.metadata import (
    DataDirLock,
    MetadataStore,
    TopicMetadata,
    normalize_topic_config,
    validate_topic_name,
)

__all__ = [
    "DataDirLock",
    "MetadataStore",
    "TopicMetadata",
    "normalize_topic_config",
    "validate_topic_name",
]
