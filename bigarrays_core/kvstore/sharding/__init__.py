"""The sharded precomputed format (``neuroglancer_uint64_sharded_v1``) as a key-value adapter.

``spec`` parses the info's ``sharding`` object and says which shard and minishard hold a
chunk id; ``shard_file`` encodes and decodes shard files and their indexes; ``store`` is
:class:`ShardedStore`, the scale's chunks as a store over the store holding its shards;
``generations`` keeps the readers of a process from mixing versions of a shard.
"""

from bigarrays_core.kvstore.sharding.spec import SHARDING_TYPE, ShardingSpec, murmurhash3_x86_128_low64
from bigarrays_core.kvstore.sharding.store import ShardedStore

__all__ = ["SHARDING_TYPE", "ShardedStore", "ShardingSpec", "murmurhash3_x86_128_low64"]
