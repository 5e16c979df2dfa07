"""The seed text's WithDel example (with the show_backrefs addition), but for the import."""

import gc
import platform

import refgraph as objgraph


class WithDel(list):
    """list subclass with custom __del__ implementation"""

    def __del__(self):
        pass


def main():
    x = WithDel()
    y = []
    z = []

    x.append(y)
    y.append(z)
    z.append(x)

    del x, y, z

    print("unreachable prior collection: %s" % gc.collect())
    print("unreachable after collection: %s" % len(gc.garbage))
    print("WithDel objects count:        %s" % objgraph.count("WithDel"))

    objgraph.show_backrefs(objgraph.by_type("WithDel"), filename="after-gc.png")


if __name__ == "__main__":
    print("Python version: %s" % platform.python_version())
    print()
    main()
