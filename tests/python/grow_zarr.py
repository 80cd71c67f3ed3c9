"""Play an instrument that appends to a Zarr store: add the records of fixture
number I to STORE along `time` (the store made by make_fixtures.py --format zarr3).

    python grow_zarr.py STORE I
"""

import sys

import numpy as np
import xarray as xr

from make_fixtures import EPOCH, file_arrays


def main():
    store, i = sys.argv[1], int(sys.argv[2])
    a = file_arrays(i)
    ds = xr.Dataset(
        {
            "ch4": ("time", a["ch4"], {"units": "ppm"}),
            "co2": ("time", a["co2"], {"units": "ppm"}),
            "waveform": (("time", "sample"), a["waveform"], {"units": "V"}),
        },
        coords={"time": ("time", a["time"], {"units": EPOCH, "calendar": "standard"})},
        attrs={"title": "Floe zarr fixture"},  # xarray's append rewrites the root attributes
    )
    ds.to_zarr(store, append_dim="time", consolidated=False)
    assert np.isfinite(a["time"]).all()


if __name__ == "__main__":
    main()
