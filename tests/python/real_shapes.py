"""Files shaped like real instruments' and products', not like Floe's own generator.

    python real_shapes.py SHAPE OUT

Each SHAPE writes a few files into OUT, the way that kind of instrument or product
writes them (netCDF4-python is netCDF-C; h5netcdf is h5py):

  cfradial_ppi   ten CF/Radial PPI volumes: one `time` per ray, several rays in one
                 second, each volume `seconds since <volume start>` with microsecond
                 ray times; `sweep` and `string_length` dimensions, char arrays,
                 packed int16 reflectivity with _FillValue, float velocity with NaN
  cfradial_rhi   three RHI volumes whose ray times step backwards inside the file
  granule        satellite L3 granules: `time` a fixed dimension of length 1, each
                 granule in `seconds since <granule start>`
  table          a calibration table with no record dimension, twice the same, then
                 one that differs (written as table_z_recal.nc)
  fills          _FillValue and missing_value together, a missing_value list, NaN
                 fill, a fill value on a char variable, _Unsigned bytes, valid_range
  attrs          attributes with newlines, arrays of every numeric type, NC_STRING
  cdf5           NetCDF-3 CDF-5 with 64-bit and unsigned types
  bigendian      NetCDF-4 variables stored big-endian
  scalar_string  a scalar NC_STRING variable and a string variable along time
  enum           a NetCDF-4 enum variable (cloud type codes)
  compound       a NetCDF-4 compound variable (refused: Zarr v3 cannot hold it)
  vlen           a NetCDF-4 vlen variable (refused)
  opaque         a NetCDF-4 opaque variable (refused)
"""

import sys
from pathlib import Path

import netCDF4
import numpy as np

RAYS_PER_SWEEP = 36
SWEEPS = 3
GATES = 50


def cfradial(path, vol, mode):
    """One CF/Radial 1.4 volume, as radar software writes it."""
    rng = np.random.default_rng(vol)
    nrays = RAYS_PER_SWEEP * SWEEPS
    start_s = 7.25 + vol * 300.0  # volume start: 12:00:07.25 + 5 min per volume
    minute, sec = divmod(start_s, 60)
    start = f"2024-05-01 12:{int(minute):02d}:{sec:09.6f}"
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.Conventions = "CF/Radial instrument_parameters"
        ds.version = "1.4"
        ds.instrument_name = "XBAND-1"
        ds.time_coverage_start = start
        ds.createDimension("time", None)
        ds.createDimension("range", GATES)
        ds.createDimension("sweep", SWEEPS)
        ds.createDimension("string_length", 32)
        t = ds.createVariable("time", "f8", ("time",))
        t.standard_name = "time"
        t.long_name = "time in seconds since volume start"
        t.units = f"seconds since {start}"
        t.calendar = "gregorian"
        # microsecond ray times; pairs of rays share a time, as at 2 rays per tick
        ticks = np.repeat(np.arange(nrays // 2) * 0.277_777, 2)
        ray_t = np.round(ticks + rng.integers(0, 999, nrays) * 1e-6, 6)
        if mode == "rhi":
            # an RHI scans up and down: the recorded ray times step back at each turn
            ray_t = ray_t.reshape(SWEEPS, -1)
            ray_t[1::2] = ray_t[1::2, ::-1]
            ray_t = ray_t.ravel()
        ray_t[0] = 0.0  # the first ray starts the volume
        t[:] = ray_t
        r = ds.createVariable("range", "f4", ("range",))
        r.units = "meters"
        r.standard_name = "projection_range_coordinate"
        r[:] = 150.0 + np.arange(GATES) * 300.0
        az = ds.createVariable("azimuth", "f4", ("time",))
        az.units = "degrees"
        el = ds.createVariable("elevation", "f4", ("time",))
        el.units = "degrees"
        if mode == "rhi":
            az[:] = np.full(nrays, 270.0)
            el[:] = np.tile(np.linspace(0.5, 89.5, RAYS_PER_SWEEP), SWEEPS)
        else:
            az[:] = np.tile(np.arange(RAYS_PER_SWEEP) * 10.0, SWEEPS)
            el[:] = np.repeat([0.5, 1.5, 2.5], RAYS_PER_SWEEP)
        dbz = ds.createVariable("DBZH", "i2", ("time", "range"), fill_value=np.int16(-32768))
        dbz.units = "dBZ"
        dbz.scale_factor = np.float32(0.01)
        dbz.add_offset = np.float32(-32.0)
        raw = rng.integers(-3000, 9000, (nrays, GATES)).astype("i2")
        raw[rng.random((nrays, GATES)) < 0.2] = -32768  # no echo
        dbz.set_auto_maskandscale(False)
        dbz[:] = raw
        vr = ds.createVariable("VRADH", "f4", ("time", "range"), fill_value=np.float32(np.nan))
        vr.units = "meters per second"
        v = rng.normal(0, 8, (nrays, GATES)).astype("f4")
        v[raw == -32768] = np.nan
        vr[:] = v
        sn = ds.createVariable("sweep_number", "i4", ("sweep",))
        sn[:] = np.arange(SWEEPS)
        sm = ds.createVariable("sweep_mode", "S1", ("sweep", "string_length"))
        name = "rhi" if mode == "rhi" else "azimuth_surveillance"
        sm[:] = netCDF4.stringtochar(np.array([name] * SWEEPS, dtype="S32"))
        fa = ds.createVariable("fixed_angle", "f4", ("sweep",))
        fa.units = "degrees"
        fa[:] = [270.0] * SWEEPS if mode == "rhi" else [0.5, 1.5, 2.5]
        ss = ds.createVariable("sweep_start_ray_index", "i4", ("sweep",))
        ss[:] = np.arange(SWEEPS) * RAYS_PER_SWEEP
        se = ds.createVariable("sweep_end_ray_index", "i4", ("sweep",))
        se[:] = np.arange(1, SWEEPS + 1) * RAYS_PER_SWEEP - 1
        for n, val, u in (("latitude", 50.93, "degrees_north"), ("longitude", 6.95, "degrees_east"),
                          ("altitude", 120.0, "meters")):
            x = ds.createVariable(n, "f8", ())
            x.units = u
            x[...] = val
        pn = ds.createVariable("platform_type", "S1", ("string_length",))
        pn[:] = netCDF4.stringtochar(np.array(["fixed"], dtype="S32"))[0]


def granule(path, k):
    """A satellite L3 granule: one time step on a fixed dimension."""
    rng = np.random.default_rng(100 + k)
    start = f"2024-06-0{k + 1} 13:30:00"
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "L3 sea surface temperature, daily"
        ds.createDimension("time", 1)
        ds.createDimension("lat", 18)
        ds.createDimension("lon", 36)
        t = ds.createVariable("time", "i4", ("time",))
        t.units = f"seconds since {start}"
        t.standard_name = "time"
        t.axis = "T"
        t[:] = [0]
        la = ds.createVariable("lat", "f4", ("lat",))
        la.units = "degrees_north"
        la[:] = np.linspace(-85, 85, 18)
        lo = ds.createVariable("lon", "f4", ("lon",))
        lo.units = "degrees_east"
        lo[:] = np.linspace(-175, 175, 36)
        sst = ds.createVariable("sst", "i2", ("time", "lat", "lon"), fill_value=np.int16(-32767))
        sst.scale_factor = 0.01
        sst.add_offset = 273.15
        sst.units = "kelvin"
        sst.set_auto_maskandscale(False)
        vals = rng.integers(-200, 3000, (1, 18, 36)).astype("i2")
        vals[:, :3, :] = -32767  # sea ice
        sst[:] = vals
        q = ds.createVariable("quality_level", "i1", ("time", "lat", "lon"))
        q.flag_values = np.array([0, 1, 2, 3, 4, 5], dtype="i1")
        q.flag_meanings = "no_data bad_data worst_quality low_quality acceptable_quality best_quality"
        q[:] = rng.integers(0, 6, (1, 18, 36)).astype("i1")


def table(path, recal=False):
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.title = "detector calibration table"
        ds.createDimension("channel", 8)
        ds.createDimension("coeff", 3)
        c = ds.createVariable("coefficients", "f8", ("channel", "coeff"))
        c.long_name = "polynomial calibration coefficients"
        c[:] = np.arange(24).reshape(8, 3) * 0.5 + (0.001 if recal else 0.0)
        w = ds.createVariable("wavelength", "f4", ("channel",))
        w.units = "nm"
        w[:] = np.linspace(400, 1000, 8)


def fills(path, k):
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("time", None)
        ds.createDimension("nchar", 4)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "hours since 2024-03-01"
        t[:] = k * 10 + np.arange(10) * 0.5
        a = ds.createVariable("temp", "f4", ("time",), fill_value=np.float32(-999.0))
        a.missing_value = np.float32(-888.0)
        a.units = "degC"
        a.valid_range = np.array([-80, 60], dtype="f4")
        v = np.linspace(-5, 5, 10).astype("f4")
        v[2], v[5] = -999.0, -888.0
        a.set_auto_maskandscale(False)
        a[:] = v
        b = ds.createVariable("rh", "f8", ("time",))
        b.missing_value = np.array([-1.0, -2.0])
        bv = np.linspace(20, 90, 10)
        bv[1], bv[7] = -1.0, -2.0
        b.set_auto_maskandscale(False)
        b[:] = bv
        n = ds.createVariable("wind", "f4", ("time",), fill_value=np.float32(np.nan))
        wv = np.arange(10, dtype="f4")
        wv[3] = np.nan
        n[:] = wv
        c = ds.createVariable("flag", "S1", ("time", "nchar"), fill_value=b"x")
        c[:] = netCDF4.stringtochar(np.array(["ok", "bad", "ok", "cal"] * 2 + ["ok", "ok"], dtype="S4"))
        u = ds.createVariable("counts", "i1", ("time",))
        u._Unsigned = "true"
        u.set_auto_maskandscale(False)
        u[:] = np.array([0, 50, 100, 127, -128, -100, -50, -1, 1, 2], dtype="i1")  # 0..255 unsigned


def attrs(path, k):
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.history = "2024-03-01: created\n2024-03-02: reprocessed with v2.1\n"
        ds.setncattr_string("processing_chain", ["level0", "level1b"])
        ds.createDimension("time", None)
        t = ds.createVariable("time", "i8", ("time",))
        t.units = "seconds since 1970-01-01"
        t[:] = 1_709_251_200 + k * 60 + np.arange(6) * 10
        v = ds.createVariable("signal", "f8", ("time",))
        for name, dt in (("a_i1", "i1"), ("a_u1", "u1"), ("a_i2", "i2"), ("a_u2", "u2"),
                         ("a_i4", "i4"), ("a_u4", "u4"), ("a_i8", "i8"), ("a_u8", "u8"),
                         ("a_f4", "f4"), ("a_f8", "f8")):
            v.setncattr(name, np.array([1, 2, 3], dtype=dt))
        v.setncattr_string("comment", "a string attribute\nover two lines")
        v.setncattr_string("aliases", ["sig", "s"])
        v[:] = np.arange(6) * 1.5 + k


def cdf5(path, k):
    with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_DATA") as ds:
        ds.createDimension("time", None)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "seconds since 2024-01-01"
        t[:] = k * 100 + np.arange(5) * 20.0
        for name, dt, vals in (("count64", "i8", [2**40, -(2**40), 0, 1, 2]),
                               ("ucount64", "u8", [2**63, 1, 2, 3, 4]),
                               ("ucount32", "u4", [2**31, 1, 2, 3, 4]),
                               ("ucount16", "u2", [65535, 1, 2, 3, 4]),
                               ("ubyte", "u1", [255, 0, 1, 2, 3])):
            x = ds.createVariable(name, dt, ("time",))
            x[:] = np.array(vals, dtype=dt)


def bigendian(path, k):
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("time", None)
        ds.createDimension("bin", 4)
        t = ds.createVariable("time", "f8", ("time",), endian="big")
        t.units = "seconds since 2024-02-01"
        t[:] = k * 50 + np.arange(5) * 10.0
        a = ds.createVariable("power", "f4", ("time", "bin"), endian="big")
        a[:] = np.arange(20, dtype="f4").reshape(5, 4) + k
        b = ds.createVariable("status", "i4", ("time",), endian="big")
        b[:] = np.arange(5) * 1000 + k


def scalar_string(path, k):
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("time", None)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "minutes since 2024-04-01"
        t[:] = k * 5 + np.arange(3)
        s = ds.createVariable("station_name", str, ())
        s[0] = "Mace Head"  # a scalar NC_STRING
        m = ds.createVariable("message", str, ("time",))
        for i in range(3):
            m[i] = f"record {k}.{i}: ok"


def user_type(path, k, kind):
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("time", None)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "seconds since 2024-07-01"
        t[:] = k * 30 + np.arange(3) * 10.0
        if kind == "enum":
            et = ds.createEnumType("u1", "cloud_t", {"clear": 0, "cumulus": 1, "stratus": 2, "missing": 255})
            c = ds.createVariable("cloud_type", et, ("time",), fill_value=255)
            c[:] = np.array([0, 1, 2], dtype="u1")
        elif kind == "compound":
            ct = ds.createCompoundType(np.dtype([("speed", "f4"), ("dir", "f4")]), "wind_t")
            c = ds.createVariable("wind", ct, ("time",))
            c[:] = np.array([(1.0, 90.0), (2.0, 180.0), (3.0, 270.0)], dtype=[("speed", "f4"), ("dir", "f4")])
        elif kind == "vlen":
            vt = ds.createVLType("i4", "ragged_t")
            c = ds.createVariable("echoes", vt, ("time",))
            data = np.empty(3, object)
            for i in range(3):
                data[i] = np.arange(i + 1, dtype="i4")
            c[:] = data
        elif kind == "opaque":
            # netCDF4-python writes opaque types only as compound members or via
            # h5py; an HDF5 opaque dataset read by netCDF-C is an opaque variable
            pass
    if kind == "opaque":
        import h5py

        with h5py.File(path, "a") as f:
            f.create_dataset("blob", data=np.void(b"\x01\x02\x03\x04"))


def main():
    shape, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    if shape == "cfradial_ppi":
        for v in range(10):
            cfradial(out / f"XBD_{v:03d}_PPI.nc", v, "ppi")
    elif shape == "cfradial_rhi":
        for v in range(3):
            cfradial(out / f"XBD_{v:03d}_RHI.nc", v, "rhi")
    elif shape == "granule":
        for k in range(3):
            granule(out / f"L3_SST_2024060{k + 1}.nc", k)
    elif shape == "table":
        table(out / "table_a.nc")
        table(out / "table_b.nc")
        table(out / "table_z_recal.nc", recal=True)
    elif shape in ("fills", "attrs", "cdf5", "bigendian", "scalar_string"):
        for k in range(3):
            globals()[shape](out / f"{shape}_{k}.nc", k)
    elif shape in ("enum", "compound", "vlen", "opaque"):
        for k in range(2):
            user_type(out / f"{shape}_{k}.nc", k, shape)
    else:
        sys.exit(f"unknown shape {shape}")


if __name__ == "__main__":
    main()
