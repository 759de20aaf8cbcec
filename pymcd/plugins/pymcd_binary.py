"""pymcd's binary protocol commands, exposed to twisted.plugin discovery like any third party's."""

from pymcd.commands.binary_arithmetic import DECREMENT, INCREMENT
from pymcd.commands.binary_maintenance import FLUSH, NOOP, QUIT, VERSION
from pymcd.commands.binary_removal import DELETE
from pymcd.commands.binary_retrieval import GAT, GATK, GET, GETK, TOUCH
from pymcd.commands.binary_sasl import SASL_AUTH, SASL_LIST_MECHS, SASL_STEP
from pymcd.commands.binary_statistics import STAT
from pymcd.commands.binary_storage import ADD, APPEND, PREPEND, REPLACE, SET

__all__ = [
    "GET", "GETK", "GAT", "GATK", "TOUCH",
    "SET", "ADD", "REPLACE", "APPEND", "PREPEND",
    "INCREMENT", "DECREMENT", "DELETE",
    "NOOP", "VERSION", "QUIT", "FLUSH", "STAT",
    "SASL_LIST_MECHS", "SASL_AUTH", "SASL_STEP",
]
