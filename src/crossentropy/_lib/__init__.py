"""Internal building blocks shared by every public function (documented, not public API).

- :mod:`~crossentropy._lib.namespace`: array library, device and the dtype policy.
- :mod:`~crossentropy._lib.policy`: the validation policy (when array values are read).
- :mod:`~crossentropy._lib.checks`: argument and value checks with messages naming the argument.
- :mod:`~crossentropy._lib.host`: host (NumPy) copies of arrays of any library.
- :mod:`~crossentropy._lib.reduction`: reductions, their divisors and derivatives.
- :mod:`~crossentropy._lib.axes`: ``axis`` arguments, one axis or a tuple of axes.
- :mod:`~crossentropy._lib.kernels`: backend-native fast paths that the generic code delegates to.

Modules elsewhere import the names these modules export; no module imports another module's
underscore names.
"""
