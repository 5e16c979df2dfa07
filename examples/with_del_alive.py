"""The seed's WithDel example, with the cycle kept alive by a module global.

On Python 3.4+ the garbage collector frees the seed's unreachable WithDel cycle, so its
``after-gc.png`` is empty. Keeping the cycle reachable shows what the picture looks like when
such objects do pile up: the WithDel instance carries the red ``__del__`` marker.
"""

import gc

import refgraph as objgraph


class WithDel(list):
    """list subclass with custom __del__ implementation"""

    def __del__(self):
        pass


kept = []


def main():
    x = WithDel()
    y = []
    z = []

    x.append(y)
    y.append(z)
    z.append(x)
    kept.append(x)

    del x, y, z

    print("unreachable prior collection: %s" % gc.collect())
    print("WithDel objects count:        %s" % objgraph.count("WithDel"))
    objgraph.show_backrefs(objgraph.by_type("WithDel"), filename="after-gc.png")


if __name__ == "__main__":
    main()
