// C interface of libmmkt_spm.so, the only code in mmkt that links SentencePiece.
//
// Why a separate library: Debian's libsentencepiece embeds protobuf 3.14 and exports its
// symbols, libtorch loads protobuf 3.21; linked into one executable the process crashes at
// start-up. The bridge is dlopen'ed with RTLD_LOCAL | RTLD_DEEPBIND (see tokenizer.cpp), so
// its protobuf symbols bind inside it. No C++ object crosses this boundary: plain C types,
// caller-owned buffers, and error messages copied into `err` (truncated to `err_cap`).
//
// Every function returning int returns 0 on success and non-zero on error.
#pragma once

#include <stddef.h>
#include <stdint.h>

extern "C" {

typedef struct mmkt_spm mmkt_spm;

// ABI version of this interface; the loader refuses a bridge with another value.
int mmkt_spm_abi_version(void);

// Trains a model. `kwargs` holds "key=value" lines (SentencePiece trainer flags, without
// "--"). When `sentences` is non-null the corpus comes from those `n_sentences` strings (the
// "input" key must then be absent); otherwise from the "input" file. On success *out is a
// loaded processor owned by the caller (free with mmkt_spm_free).
int mmkt_spm_train(const char* kwargs, const char* const* sentences, size_t n_sentences,
                   mmkt_spm** out, char* err, size_t err_cap);

// Loads a model from a file, or from the bytes of a serialized model.
int mmkt_spm_load_file(const char* path, mmkt_spm** out, char* err, size_t err_cap);
int mmkt_spm_load_bytes(const char* data, size_t size, mmkt_spm** out, char* err, size_t err_cap);
void mmkt_spm_free(mmkt_spm* h);

// Size in bytes of the serialized model, and a copy into `buf` (cap >= that size).
size_t mmkt_spm_serialized_size(const mmkt_spm* h);
int mmkt_spm_serialize(const mmkt_spm* h, char* buf, size_t cap);

// Encodes UTF-8 `text` into ids. Writes min(n, cap) ids and the full count into *n_out; the
// caller retries with a larger buffer when *n_out > cap.
int mmkt_spm_encode(const mmkt_spm* h, const char* text, size_t len, int32_t* ids, size_t cap,
                    size_t* n_out, char* err, size_t err_cap);
// Decodes ids into UTF-8 text, with the same sizing protocol.
int mmkt_spm_decode(const mmkt_spm* h, const int32_t* ids, size_t n, char* text, size_t cap,
                    size_t* n_out, char* err, size_t err_cap);

int32_t mmkt_spm_vocab_size(const mmkt_spm* h);
// Writes the piece of `id` (same sizing protocol); returns non-zero for an id out of range.
int mmkt_spm_id_to_piece(const mmkt_spm* h, int32_t id, char* buf, size_t cap, size_t* n_out);
int32_t mmkt_spm_piece_to_id(const mmkt_spm* h, const char* piece, size_t len);
// Special ids as the model defines them (-1 when disabled).
int32_t mmkt_spm_special_id(const mmkt_spm* h, int which);  // 0 pad, 1 unk, 2 bos, 3 eos

}  // extern "C"

#define MMKT_SPM_ABI_VERSION 1
