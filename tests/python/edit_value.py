"""Edit one value of a NetCDF file in place, as someone "fixing" a file after the fact.

    python edit_value.py PATH VARIABLE INDEX VALUE
"""

import sys

import netCDF4

path, name, index, value = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
with netCDF4.Dataset(path, "r+") as ds:
    ds[name][index] = value
