"""Index and search parameter validation: Milvus's rules, defaults and error wording."""

from __future__ import annotations

import pytest

from common.errors import Code, MilvusError
from common.index import (
    check_metric_match,
    default_metric,
    metric_ascending,
    resolve_engine,
    validate_index_params,
    validate_search_params,
)

FLOAT, BINARY, F16, BF16, SPARSE, INT8 = 101, 100, 102, 103, 104, 105


def _err(fn, *args, **kwargs) -> MilvusError:
    with pytest.raises(MilvusError) as info:
        fn(*args, **kwargs)
    return info.value


def test_invalid_index_type_is_named() -> None:
    err = _err(validate_index_params, "IVF_XYZ", "L2", {}, FLOAT, 8)
    assert err.code == Code.PARAMETER_INVALID
    assert err.message == "invalid parameter[expected=valid index][actual=invalid index type: IVF_XYZ]"


def test_metric_not_supported_for_binary_index() -> None:
    err = _err(validate_index_params, "BIN_IVF_FLAT", "COSINE", {"nlist": 8}, BINARY, 64)
    assert err.code == Code.PARAMETER_INVALID
    assert err.message == "metric type COSINE not found or not supported, supported: [HAMMING JACCARD]"


def test_float_metric_rejects_hamming() -> None:
    err = _err(validate_index_params, "HNSW", "HAMMING", {}, FLOAT, 8)
    assert "HAMMING" in err.message and "[L2 IP COSINE]" in err.message


@pytest.mark.parametrize("nlist", [0, 65537, "abc", 1.5, True])
def test_nlist_out_of_range(nlist: object) -> None:
    err = _err(validate_index_params, "IVF_FLAT", "L2", {"nlist": nlist}, FLOAT, 8)
    assert err.code == Code.PARAMETER_INVALID
    assert "nlist" in err.message


def test_nlist_range_message() -> None:
    assert _err(validate_index_params, "IVF_SQ8", "L2", {"nlist": 0}, FLOAT, 8).message == (
        "nlist out of range: [1, 65536]"
    )


def test_defaults_and_string_values() -> None:
    assert validate_index_params("IVF_FLAT", "l2", {}, FLOAT, 8) == {"nlist": 128, "metric_type": "L2"}
    out = validate_index_params("HNSW", "IP", {"M": "16", "efConstruction": 64.0}, FLOAT, 8)
    assert out == {"M": 16, "efConstruction": 64, "metric_type": "IP"}
    assert validate_index_params("HNSW", "", {}, FLOAT, 8) == {
        "M": 30,
        "efConstruction": 360,
        "metric_type": "COSINE",
    }


def test_unknown_keys_dropped_and_nested_params_flattened() -> None:
    out = validate_index_params("ivf_flat", "", {"metric_type": "IP", "params": '{"nlist": 64}', "foo": 1}, FLOAT, 8)
    assert out == {"nlist": 64, "metric_type": "IP"}


def test_ivf_pq_rules() -> None:
    err = _err(validate_index_params, "IVF_PQ", "L2", {"nlist": 8}, FLOAT, 16)
    assert err.code == Code.PARAMETER_MISSING and "`m`" in err.message
    err = _err(validate_index_params, "IVF_PQ", "L2", {"m": 3}, FLOAT, 16)
    assert "Dimension: 16, m: 3" in err.message
    assert _err(validate_index_params, "IVF_PQ", "L2", {"m": 4, "nbits": 25}, FLOAT, 16).message == (
        "nbits out of range: [1, 24]"
    )
    assert validate_index_params("IVF_PQ", "L2", {"m": 4}, FLOAT, 16) == {
        "nlist": 128,
        "m": 4,
        "nbits": 8,
        "metric_type": "L2",
    }


def test_hnsw_ranges() -> None:
    assert _err(validate_index_params, "HNSW", "L2", {"M": 1}, FLOAT, 8).message == "M out of range: [2, 2048]"
    assert "efConstruction" in _err(validate_index_params, "HNSW", "L2", {"efConstruction": 0}, FLOAT, 8).message


def test_data_type_must_fit_index() -> None:
    err = _err(validate_index_params, "IVF_FLAT", "HAMMING", {}, BINARY, 64)
    assert err.code == Code.INDEX_NOT_SUPPORTED
    assert err.message == "data type BinaryVector can't build with this index IVF_FLAT"
    assert _err(validate_index_params, "BIN_FLAT", "L2", {}, FLOAT, 8).code == Code.INDEX_NOT_SUPPORTED
    assert _err(validate_index_params, "IVF_FLAT", "L2", {}, INT8, 8).code == Code.INDEX_NOT_SUPPORTED
    assert _err(validate_index_params, "FLAT", "L2", {}, 5, 8).code == Code.INDEX_NOT_SUPPORTED


def test_binary_dim_multiple_of_8() -> None:
    assert "multiple of 8" in _err(validate_index_params, "BIN_FLAT", "HAMMING", {}, BINARY, 12).message


def test_autoindex_resolution() -> None:
    out = validate_index_params("AUTOINDEX", "", {}, FLOAT, 8)
    assert out["metric_type"] == "COSINE" and out["M"] == 18 and out["efConstruction"] == 240
    assert validate_index_params("", "", {}, BINARY, 64)["metric_type"] == "HAMMING"
    assert validate_index_params("AUTOINDEX", "", {}, SPARSE, 0)["metric_type"] == "IP"
    assert resolve_engine("AUTOINDEX", FLOAT) == "HNSW"
    assert resolve_engine("AUTOINDEX", BINARY) == "BIN_FLAT"
    assert resolve_engine("AUTOINDEX", SPARSE) == "SPARSE_INVERTED_INDEX"
    assert resolve_engine("IVF_FLAT", FLOAT) == "IVF_FLAT"


def test_half_precision_types_accept_float_indexes() -> None:
    for dtype in (F16, BF16):
        assert validate_index_params("IVF_SQ8", "L2", {}, dtype, 8)["nlist"] == 128
    assert validate_index_params("HNSW", "IP", {}, INT8, 8)["metric_type"] == "IP"


def test_sparse_params() -> None:
    out = validate_index_params("SPARSE_INVERTED_INDEX", "IP", {"drop_ratio_build": "0.2"}, SPARSE, 0)
    assert out == {"drop_ratio_build": 0.2, "metric_type": "IP"}
    assert (
        "drop_ratio_build"
        in _err(validate_index_params, "SPARSE_WAND", "IP", {"drop_ratio_build": 1}, SPARSE, 0).message
    )
    assert _err(validate_index_params, "SPARSE_WAND", "L2", {}, SPARSE, 0).code == Code.PARAMETER_INVALID


def test_search_params_defaults_and_ranges() -> None:
    assert validate_search_params("IVF_FLAT", {}) == {"nprobe": 8}
    assert validate_search_params("IVF_FLAT", {"nprobe": "32", "junk": 1}) == {"nprobe": 32}
    assert _err(validate_search_params, "IVF_PQ", {"nprobe": 0}).message == "nprobe out of range: [1, 65536]"
    assert validate_search_params("FLAT", {"nprobe": 10}) == {}
    assert validate_search_params("FLAT", {"params": {"radius": 1}}) == {"radius": 1.0}


def test_hnsw_ef_must_cover_k() -> None:
    assert validate_search_params("HNSW", {}, k=5) == {"ef": 16}
    assert validate_search_params("HNSW", {}, k=100) == {"ef": 100}
    assert validate_search_params("HNSW", {"ef": 10}, k=10) == {"ef": 10}
    assert _err(validate_search_params, "HNSW", {"ef": 5}, k=10).message == "ef(5) should be larger than k(10)"


def test_autoindex_search_level() -> None:
    assert validate_search_params("AUTOINDEX", {}, k=10)["ef"] == 64
    assert validate_search_params("AUTOINDEX", {"level": 3}, k=10)["ef"] == 192
    assert validate_search_params("AUTOINDEX", {}, k=500)["ef"] == 500
    assert "level" in _err(validate_search_params, "AUTOINDEX", {"level": 11}).message


def test_range_filter_needs_radius() -> None:
    assert "radius" in _err(validate_search_params, "FLAT", {"range_filter": 1.0}).message


def test_metric_helpers() -> None:
    assert metric_ascending("L2") and metric_ascending("hamming") and metric_ascending("JACCARD")
    assert not metric_ascending("IP") and not metric_ascending("COSINE")
    assert default_metric(FLOAT) == "COSINE" and default_metric(BINARY) == "HAMMING"
    assert check_metric_match("L2", "") == "L2"
    assert check_metric_match("L2", "l2") == "L2"
    err = _err(check_metric_match, "L2", "IP")
    assert err.message == "metric type not match: invalid parameter[expected=L2][actual=IP]"
    assert _err(metric_ascending, "FOO").code == Code.PARAMETER_INVALID


def test_ivf_rabitq_rules() -> None:
    built = validate_index_params("IVF_RABITQ", "L2", {}, FLOAT, 16)
    assert built == {"nlist": 128, "refine": False, "metric_type": "L2"}
    built = validate_index_params("IVF_RABITQ", "IP", {"nlist": 64, "refine": "true", "refine_type": "sq8"}, F16, 16)
    assert built == {"nlist": 64, "refine": True, "refine_type": "SQ8", "metric_type": "IP"}
    # refine_type is only read when refine is on (knowhere's rule)
    assert "refine_type" not in validate_index_params("IVF_RABITQ", "L2", {"refine_type": "INT8"}, FLOAT, 16)
    err = _err(validate_index_params, "IVF_RABITQ", "L2", {"refine": True, "refine_type": "INT8"}, FLOAT, 16)
    assert err.code == Code.PARAMETER_INVALID
    assert err.message == "invalid refine type (INT8), supported: [SQ6 SQ8 FP16 BF16 FP32 FLAT]"
    assert _err(validate_index_params, "IVF_RABITQ", "L2", {"refine": "yes"}, FLOAT, 16).message == (
        "invalid refine: yes, must be a bool (true or false)"
    )
    assert "data type" in _err(validate_index_params, "IVF_RABITQ", "L2", {}, BINARY, 16).message
    assert validate_search_params("IVF_RABITQ", {"rbq_bits_query": "8", "refine_k": 10}) == {
        "nprobe": 8, "rbq_bits_query": 8, "refine_k": 10.0
    }
    assert _err(validate_search_params, "IVF_RABITQ", {"rbq_bits_query": 9}).message == (
        "rbq_bits_query out of range: [0, 8]"
    )
    assert _err(validate_search_params, "IVF_RABITQ", {"refine_k": 0.5}).message == "refine_k out of range: [1, inf]"


def test_scann_rules() -> None:
    assert validate_index_params("SCANN", "COSINE", {}, FLOAT, 16) == {
        "nlist": 128, "with_raw_data": True, "sub_dim": 2, "metric_type": "COSINE"
    }
    assert validate_index_params("SCANN", "L2", {"with_raw_data": False}, BF16, 16)["with_raw_data"] is False
    assert _err(validate_index_params, "SCANN", "L2", {}, FLOAT, 15).message == (
        "The dimension of a vector (dim) should be a multiple of sub_dim. Dimension:15, sub_dim:2"
    )
    assert validate_search_params("SCANN", {"nprobe": 32, "reorder_k": 100}, k=10) == {"nprobe": 32, "reorder_k": 100}
    assert validate_search_params("SCANN", {}, k=10) == {"nprobe": 8}  # reorder_k: k (no re-rank beyond k)
    err = _err(validate_search_params, "SCANN", {"reorder_k": 5}, k=10)
    assert err.message == "reorder_k(5) should be larger than k(10)"


def test_diskann_rules() -> None:
    built = validate_index_params("DISKANN", "L2", {"pq_code_budget_gb_ratio": 0.125}, FLOAT, 16)
    assert built["max_degree"] == 56 and built["search_list_size"] == 100 and built["pq_code_budget_gb_ratio"] == 0.125
    assert (built["M"], built["efConstruction"]) == (28, 100)  # the graph that serves it (docs/index-types.md)
    assert resolve_engine("DISKANN", FLOAT) == "HNSW"
    assert "max_degree" in _err(validate_index_params, "DISKANN", "L2", {"max_degree": 0}, FLOAT, 16).message
    # Milvus documents the search knob as search_list; knowhere names it search_list_size
    assert validate_search_params("DISKANN", {"search_list": 30}, k=10)["ef"] == 30
    assert validate_search_params("DISKANN", {"search_list_size": "40"}, k=10)["ef"] == 40
    assert validate_search_params("DISKANN", {}, k=10)["ef"] == 16
    assert validate_search_params("DISKANN", {}, k=50)["ef"] == 50
    assert _err(validate_search_params, "DISKANN", {"search_list": 1}, k=10).message == (
        "search_list_size(1) should be larger than k(10)"
    )
    assert _err(validate_search_params, "DISKANN", {"search_list_size": -1}, k=10).message == (
        "search_list_size out of range: [1, 2147483647]"
    )


def test_widen_candidate_lists_for_internal_searches() -> None:
    from common.index import widen_candidate_lists

    assert widen_candidate_lists({"ef": 10, "nprobe": 4}, 64) == {"ef": 64, "nprobe": 4}
    assert widen_candidate_lists({"ef": 100}, 64) == {"ef": 100}
    assert widen_candidate_lists({"search_list_size": 30, "ef": 30, "reorder_k": 5}, 50) == {
        "search_list_size": 50, "ef": 50, "reorder_k": 50
    }
    assert widen_candidate_lists({"nprobe": 8}, 500) == {"nprobe": 8}
