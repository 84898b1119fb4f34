"""moto's server with DynamoDB made safe under concurrent clients (scripts/moto.sh runs it when
MOTO_SERIALIZE_DYNAMODB=1; bench/cloud_load.sh does).

moto's server answers each request on its own thread, and its DynamoDB backend has no lock:
- a conditional write checks and writes in two steps, so two clients can both pass the same
  condition, which DynamoDB never allows;
- TransactWriteItems deep-copies every table it touches before it starts and, when the transaction
  is cancelled, puts that copy back: the writes other clients made meanwhile are lost, and the copy
  costs time in proportion to the table's size (minutes per thousand transactions on a large table);
- a Query sorts every item of the table before it picks the partition's (or the index's) items.

Here every DynamoDB request runs under one lock (DynamoDB serializes writes to one item and isolates
transactions; a single lock is stricter, never weaker), and a transaction saves and restores only
the items it touches, and a Query reads its partition only (on an index: every item, unsorted). SQS and
EventBridge keep their own threads (long polls wait concurrently).
Usage: python moto_server.py [moto_server's arguments].
"""

import copy
import logging
import sys
import threading

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_LOCK = threading.RLock()
_call_action = DynamoHandler.call_action


def _serialized_call_action(self):
    with _LOCK:
        return _call_action(self)


DynamoHandler.call_action = _serialized_call_action


class _NoTableCopy:
    """Stands in for the `copy` module inside moto.dynamodb.models: tables are not copied (the
    transaction wrapper below restores the touched items instead); everything else is."""

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


dynamodb_models.copy = _NoTableCopy
_transact_write_items = DynamoDBBackend.transact_write_items


def _touched(backend, transact_items):
    """(table, hash key, range key, saved item or None) for every item the transaction names."""
    saved = []
    for entry in transact_items:
        try:
            _, op = next(iter(entry.items()))
            table = backend.get_table(op["TableName"])
            if "Item" in op:
                names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
                key = {name: op["Item"][name] for name in names}
            else:
                key = op["Key"]
            hash_key, range_key = backend.get_keys_value(table, key)
        except Exception:  # the transaction itself reports a malformed entry
            continue
        saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
    return saved


def _restore(saved):
    for table, hash_key, range_key, item in reversed(saved):
        if item is None:
            if table.get_item(hash_key, range_key) is not None:
                table.delete_item(hash_key, range_key)
        elif range_key is not None:
            table.items[hash_key][range_key] = item
        else:
            table.items[hash_key] = item


def _transact_write_items_restoring_touched_items(self, transact_items):
    saved = _touched(self, transact_items)
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        _restore(saved)
        raise


DynamoDBBackend.transact_write_items = _transact_write_items_restoring_touched_items

_query = Table.query


def _query_one_partition(self, hash_key, *args, **kwargs):
    index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
    if not self.range_key_attr:
        return _query(self, hash_key, *args, **kwargs)
    # moto's query picks the partition's items out of `all_items()`, which sorts the whole table:
    # hand it the partition only, or for an index every item unsorted (it sorts what it picks).
    # Under the lock, no other request sees this instance attribute.
    if index_name is None:
        candidates = list(self.items.get(hash_key, {}).values())
    else:
        candidates = [item for partition in self.items.values() for item in partition.values()]
    self.all_items = lambda: candidates
    try:
        return _query(self, hash_key, *args, **kwargs)
    finally:
        del self.all_items


Table.query = _query_one_partition

if __name__ == "__main__":
    # One log line per request costs moto a tenth of its time under load; errors are still logged.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    sys.exit(main(sys.argv[1:]))
