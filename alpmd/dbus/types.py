"""D-Bus type annotations for the interfaces (dbus-fast reads them from ``Annotated``)."""

from typing import Annotated, Any

from dbus_fast.annotations import DBusSignature
from dbus_fast.signature import Variant

S = Annotated[str, DBusSignature("s")]
B = Annotated[bool, DBusSignature("b")]
U = Annotated[int, DBusSignature("u")]
T = Annotated[int, DBusSignature("t")]
X = Annotated[int, DBusSignature("x")]
D = Annotated[float, DBusSignature("d")]
H = Annotated[int, DBusSignature("h")]
O = Annotated[str, DBusSignature("o")]  # noqa: E741
AS = Annotated[list[str], DBusSignature("as")]
AO = Annotated[list[str], DBusSignature("ao")]
AH = Annotated[list[int], DBusSignature("ah")]
Opts = Annotated[dict[str, Variant], DBusSignature("a{sv}")]
ListOfDicts = Annotated[list[dict[str, Variant]], DBusSignature("aa{sv}")]
Pairs = Annotated[list[list[str]], DBusSignature("a(ss)")]
SearchRows = Annotated[list[list[Any]], DBusSignature("a(sssssb)")]
Groups = Annotated[list[list[Any]], DBusSignature("a(sas)")]
UU = Annotated[list[int], DBusSignature("(uu)")]
TT = Annotated[list[int], DBusSignature("(tt)")]
SS = Annotated[list[str], DBusSignature("(ss)")]
Question = Annotated[list[Any], DBusSignature("(ussasa{sv})")]
LogEntry = Annotated[list[Any], DBusSignature("(tsss)")]
LogRows = Annotated[list[list[Any]], DBusSignature("a(tsss)")]
V = Annotated[Variant, DBusSignature("v")]
SigLog = Annotated[list[Any], DBusSignature("tsss")]
SigItem = Annotated[list[Any], DBusSignature("suuu")]
SigDownload = Annotated[list[Any], DBusSignature("sttd")]
SigQuestion = Annotated[list[Any], DBusSignature("ussasa{sv}")]
SigFinished = Annotated[list[Any], DBusSignature("sss")]
