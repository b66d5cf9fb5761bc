//! Sentence embeddings, computed locally with fastembed on ONNX Runtime.
//!
//! The model is all-MiniLM-L6-v2 (Reimers & Gurevych, Sentence-BERT, 2019) as
//! an int8 ONNX file with its tokenizer files in one directory, loaded through
//! fastembed's user-defined-model API with mean pooling; vectors are
//! L2-normalised so the dot product is the cosine similarity. ONNX Runtime is
//! a shared library loaded at run time (ort's `load-dynamic`): `ORT_DYLIB_PATH`,
//! else `libonnxruntime.so.1.31.1` beside the model directory, as laid out by
//! `scripts/embedding-model`. Nothing is fetched from a model hub.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};

/// Dimension of the vectors (all-MiniLM-L6-v2).
pub const DIM: usize = 384;

/// The ONNX Runtime library file `scripts/embedding-model` installs.
pub const ORT_LIBRARY: &str = "libonnxruntime.so.1.31.1";

/// A loaded embedding model. Calls are serialised (ONNX Runtime sessions are
/// run one batch at a time here; the batch itself uses every core).
pub struct Embedder {
    model: Mutex<TextEmbedding>,
    id: String,
}

/// Where the default model lives: `$EMBEDDING_MODEL_CACHE/model`, else
/// `~/.cache/steward/embedding/model` (see `scripts/embedding-model`).
pub fn default_model_dir() -> Option<PathBuf> {
    let root = match std::env::var_os("EMBEDDING_MODEL_CACHE") {
        Some(r) => PathBuf::from(r),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/steward/embedding"),
    };
    Some(root.join("model"))
}

/// [`default_model_dir`], when a model is installed there (`model.onnx`).
pub fn installed_model_dir() -> Option<PathBuf> {
    default_model_dir().filter(|d| d.join("model.onnx").is_file())
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    std::fs::read(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
}

impl Embedder {
    /// Loads the model in `dir` (`model.onnx`, `tokenizer.json`, `config.json`,
    /// `special_tokens_map.json`, `tokenizer_config.json`).
    ///
    /// # Errors
    /// A message naming the missing file, an ONNX Runtime library that cannot
    /// be loaded, or a model ONNX Runtime rejects.
    pub fn load(dir: &Path) -> Result<Embedder, String> {
        let onnx = read(dir, "model.onnx")?;
        let id = format!(
            "all-MiniLM-L6-v2-int8@{}",
            &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&onnx))[..12]
        );
        let tokenizer = TokenizerFiles {
            tokenizer_file: read(dir, "tokenizer.json")?,
            config_file: read(dir, "config.json")?,
            special_tokens_map_file: read(dir, "special_tokens_map.json")?,
            tokenizer_config_file: read(dir, "tokenizer_config.json")?,
        };
        let library = std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .or_else(|| dir.parent().map(|p| p.join(ORT_LIBRARY)))
            .ok_or("no ONNX Runtime library: set ORT_DYLIB_PATH")?;
        if !library.is_file() {
            return Err(format!(
                "ONNX Runtime library {} not found (run scripts/embedding-model fetch or set ORT_DYLIB_PATH)",
                library.display()
            ));
        }
        // Loads the library once per process; a second call is a no-op.
        drop(ort::init_from(&library).map_err(|e| format!("ONNX Runtime: {e}"))?);
        let model = UserDefinedEmbeddingModel::new(onnx, tokenizer).with_pooling(Pooling::Mean);
        let options = InitOptionsUserDefined::new().with_max_length(256);
        let model = TextEmbedding::try_new_from_user_defined(model, options)
            .map_err(|e| format!("the embedding model could not be loaded: {e}"))?;
        Ok(Embedder {
            model: Mutex::new(model),
            id,
        })
    }

    /// A stable name of the model and its weights: vectors from different
    /// models are never mixed in one store.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Unit vectors of [`DIM`] floats, one per text, in order.
    ///
    /// # Errors
    /// ONNX Runtime failures, as a message.
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        let mut model = self
            .model
            .lock()
            .map_err(|_| "the embedding model is unusable after a panic".to_owned())?;
        let vectors = model
            .embed(texts, Some(8))
            .map_err(|e| format!("embedding failed: {e}"))?;
        Ok(vectors.into_iter().map(normalised).collect())
    }
}

/// `v / ‖v‖₂` (a zero vector stays zero).
pub fn normalised(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}
