"""Ground truth: does xarray read the Icechunk repository exactly as it reads the sources?

    python check_repo.py REPO SOURCE_FILES... [--branch main] [--group /] [--append-dim time ...]
        [--source-group engineering] [--engine netcdf4|zarr]

Builds the expected dataset by concatenating the source files (as xarray reads them)
along each variable's append dimension (a variable missing from a file contributes
missing values, as xr.concat does), then compares with xr.open_zarr on an Icechunk
read-only session: variable names, dimension names, dtypes, values (NaN-aware),
attributes and CF time encoding; both decoded and raw (decode_cf=False), where the
stored values must be bit-identical. Exits 1 with a list of differences.
"""

import argparse
import os
import sys

import icechunk
import numpy as np
import xarray as xr


def norm(v):
    if isinstance(v, np.ndarray):
        return [norm(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, float) and np.isnan(v):
        return "NaN"
    return v


def norm_attrs(attrs):
    return {k: norm(v) for k, v in attrs.items()}


def as_text(a):
    return [x.decode() if isinstance(x, bytes) else str(x) for x in np.asarray(a).ravel().tolist()]


def expected(files, append_dims, group, engine, decode):
    kw = dict(decode_cf=decode, mask_and_scale=decode, decode_times=decode)
    if engine == "zarr":
        dss = [xr.open_zarr(f, consolidated=False, **kw) for f in files]
    else:
        dss = [xr.open_dataset(f, group=group, engine=engine, **kw) for f in files]
    names = []
    for ds in dss:
        for n in ds.variables:
            if n not in names:
                names.append(n)
    out = {}
    reencoded = set()
    for n in names:
        units = {str(ds.variables[n].attrs.get("units", ds.variables[n].encoding.get("units")))
                 for ds in dss if n in ds.variables}
        if len(units) > 1:
            reencoded.add(n)
        proto = next(ds.variables[n] for ds in dss if n in ds.variables)
        axis_dims = [d for d in proto.dims if d in append_dims]
        if not axis_dims:
            out[n] = proto
            continue
        d = axis_dims[0]
        pieces = []
        for ds in dss:
            if n in ds.variables:
                pieces.append(ds.variables[n])
            else:
                shape = tuple(ds.sizes[x] if x == d else proto.sizes[x] for x in proto.dims)
                fill = np.full(shape, np.nan, dtype=np.result_type(proto.dtype, np.float32))
                pieces.append(xr.Variable(proto.dims, fill, proto.attrs))
        out[n] = xr.Variable.concat(pieces, dim=d)
    return out, dss[0].attrs, reencoded


def unpack_as_zarr(raw, enc):
    """What xarray decodes packed values to from a Zarr store: JSON attributes carry no
    float32, so scale_factor/add_offset are float64 there and so is the arithmetic."""
    vals = raw.values.astype("f8")
    missing = [enc.get("_FillValue"), *np.atleast_1d(enc.get("missing_value", []))]
    for m in missing:
        if m is not None:
            vals[raw.values == m] = np.nan
    return vals * float(enc.get("scale_factor", 1.0)) + float(enc.get("add_offset", 0.0))


def enum_flags(files, engine):
    """CF flag attributes Floe adds to a NetCDF-4 enum (stored as its integers):
    {variable: (flag_values, flag_meanings)} from the first file's enum types."""
    if engine != "netcdf4":
        return {}
    import netCDF4

    out = {}
    with netCDF4.Dataset(files[0]) as ds:
        for n, v in ds.variables.items():
            if isinstance(v.datatype, netCDF4.EnumType):
                d = v.datatype.enum_dict
                out[n] = ([int(x) for x in d.values()], " ".join(k.replace(" ", "_") for k in d))
    return out


def compare(exp_vars, exp_attrs, got, label, errors, packed_notes, reencoded=(), raw_vars=None, enums=None):
    gv = dict(got.variables)
    if set(exp_vars) != set(gv):
        errors.append(f"{label}: variables differ: expected {sorted(exp_vars)}, repo has {sorted(gv)}")
    if norm_attrs(exp_attrs) != norm_attrs(got.attrs):
        errors.append(f"{label}: global attributes differ: {norm_attrs(exp_attrs)} vs {norm_attrs(got.attrs)}")
    for n, e in exp_vars.items():
        if n not in gv:
            continue
        if label == "raw" and n in reencoded:
            continue  # stored in the repository's units; compared decoded
        if label == "raw" and e.dtype == "S1" and n in gv and gv[n].ndim == e.ndim - 1:
            continue  # a char array, stored as strings; compared decoded (joined)
        g = gv[n]
        if tuple(e.dims) != tuple(g.dims):
            errors.append(f"{label}: {n}: dims {e.dims} vs {g.dims}")
            continue
        ev, gvals = e.values, g.values
        if ev.dtype.kind in "OUS" or gvals.dtype.kind in "OUS":
            if as_text(ev) != as_text(gvals):
                errors.append(f"{label}: {n}: text values differ")
            continue
        if ev.dtype != gvals.dtype:
            packed = "scale_factor" in e.encoding or "add_offset" in e.encoding
            if packed and ev.dtype.kind == "f" and gvals.dtype.kind == "f" and raw_vars:
                # xarray picks the decoded float type from the attribute's type, which
                # JSON attributes cannot carry (xarray's own to_zarr has the same
                # limit): the repository decodes in float64 what the source decodes
                # in float32. The stored values are compared bit for bit in the raw
                # pass; here the repository must equal the source's stored values
                # unpacked in float64, exactly.
                want = unpack_as_zarr(raw_vars[n], e.encoding)
                if not np.array_equal(want, gvals, equal_nan=True):
                    errors.append(f"{label}: {n}: packed values differ from the source's unpacked in float64")
                packed_notes.add(f"{n}: xarray decodes packed values as {gvals.dtype} from the repo "
                                 f"(JSON attributes) and {ev.dtype} from the source; equal to the source unpacked in {gvals.dtype}")
                continue
            else:
                errors.append(f"{label}: {n}: dtype {ev.dtype} vs {gvals.dtype}")
                continue
        if ev.shape != gvals.shape:
            errors.append(f"{label}: {n}: shape {ev.shape} vs {gvals.shape}")
            continue
        same = np.array_equal(ev, gvals, equal_nan=ev.dtype.kind in "fcmM")
        if not same:
            bad = np.argwhere(~((ev == gvals) | (np.isnan(ev) & np.isnan(gvals)) if ev.dtype.kind == "f" else (ev == gvals)))
            errors.append(f"{label}: {n}: values differ at {len(bad)} positions, first {bad[:3].tolist()}")
        ea = {k: v for k, v in norm_attrs(e.attrs).items()}
        ga = {k: v for k, v in norm_attrs(g.attrs).items()}
        if enums and n in enums:
            # an enum's mapping, as CF flags: the only attributes Floe adds
            want = enums[n]
            have = (ga.pop("flag_values", None), ga.pop("flag_meanings", None))
            if have != (list(want[0]), want[1]):
                errors.append(f"{label}: {n}: enum flags {have} vs {want}")
            packed_notes.add(f"{n}: a NetCDF-4 enum, stored as its integers with flag_values/flag_meanings")
        if ea != ga:
            errors.append(f"{label}: {n}: attributes {ea} vs {ga}")
        for key in ("units", "calendar"):
            if norm(e.encoding.get(key)) != norm(g.encoding.get(key)):
                errors.append(f"{label}: {n}: encoding {key} {e.encoding.get(key)} vs {g.encoding.get(key)}")


def storage_for(url):
    """Local path, or s3:// / az:// on the loopback test servers (settings from the environment)."""
    if url.startswith("s3://"):
        bucket, _, prefix = url[5:].partition("/")
        return icechunk.s3_storage(
            bucket=bucket, prefix=prefix or None, endpoint_url=os.environ["AWS_ENDPOINT_URL"],
            allow_http=True, force_path_style=True, region=os.environ.get("AWS_REGION", "us-east-1"),
            access_key_id=os.environ["AWS_ACCESS_KEY_ID"], secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"])
    if url.startswith("az://"):
        container, _, prefix = url[5:].partition("/")
        account = os.environ.get("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1")
        key = os.environ.get("AZURE_STORAGE_ACCOUNT_KEY")
        return icechunk.azure_storage(account=account, container=container, prefix=prefix,
                                      access_key=key, from_env=key is None,
                                      config={"use_emulator": "true"})
    return icechunk.local_filesystem_storage(url)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("repo")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--branch", default="main")
    ap.add_argument("--group", default=None, help="group inside the repository")
    ap.add_argument("--source-group", default=None, help="group inside the source files")
    ap.add_argument("--append-dim", action="append", default=[])
    ap.add_argument("--engine", default="netcdf4")
    args = ap.parse_args()
    repo = icechunk.Repository.open(storage_for(args.repo))
    session = repo.readonly_session(branch=args.branch)
    errors, notes = [], set()
    append = args.append_dim or ["time", "hf_time"]
    timed = set()
    # the raw pass is read once: the decoded pass needs it too (packed values)
    raw = expected(args.files, append, args.source_group, args.engine, False)
    raw_vars = raw[0]
    enums = enum_flags(args.files, args.engine)
    for decode in (True, False):
        if decode:
            exp_vars, exp_attrs, reencoded = expected(args.files, append, args.source_group, args.engine, True)
        else:
            exp_vars, exp_attrs, reencoded = raw
        kw = dict(decode_cf=decode, mask_and_scale=decode, decode_times=decode)
        got = xr.open_zarr(session.store, consolidated=False, group=args.group, **kw)
        if decode:
            # CF times along a record dimension are stored in Floe's record-time
            # encoding (float times as int64 nanoseconds, later units mapped onto the
            # repository's): they must decode to the same instants; compare the
            # repository's own units as such
            for n, e in exp_vars.items():
                if n in got.variables and e.dtype.kind == "M" and \
                        e.encoding.get("units") != got[n].encoding.get("units"):
                    timed.add(n)
            for n in reencoded | timed:
                if n in got.variables:
                    exp_vars[n].encoding["units"] = got[n].encoding.get("units")
        else:
            for n in reencoded | timed:
                notes.add(f"{n}: CF time stored as {got[n].dtype} `{got[n].attrs.get('units')}`; compared decoded")
        compare(exp_vars, exp_attrs, got, "decoded" if decode else "raw", errors, notes, reencoded | timed,
                raw_vars, enums)
    for n in sorted(notes):
        print(f"note: {n}")
    if errors:
        for e in errors:
            print(f"MISMATCH {e}")
        sys.exit(1)
    print(f"OK: repo equals {len(args.files)} source file(s)")


if __name__ == "__main__":
    from finish import run

    run(main)
