//! Reloading a flow without a restart (`hotline ivr reload`, SIGHUP).
//!
//! Sessions hold an `Arc<Flow>`: a reload swaps the handle's `Arc` for new calls, and calls
//! in progress keep the version they started with until they end. A reload that fails
//! validation changes nothing, so a typo in the file never takes the hotline down.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::{Flow, FlowError, load_flow_file};
use crate::prompts::PromptCatalog;

/// The current version of one flow file.
#[derive(Debug)]
pub struct FlowHandle {
    path: PathBuf,
    catalog: Option<PromptCatalog>,
    current: RwLock<Arc<Flow>>,
    version: RwLock<u64>,
}

impl FlowHandle {
    /// Loads `path` (validated against `catalog`, if given).
    pub fn load(path: &Path, catalog: Option<PromptCatalog>) -> Result<Self, FlowError> {
        let flow = load_flow_file(path, catalog.as_ref())?;
        Ok(Self {
            path: path.to_path_buf(),
            catalog,
            current: RwLock::new(Arc::new(flow)),
            version: RwLock::new(1),
        })
    }

    /// The flow new calls start with.
    pub fn current(&self) -> Arc<Flow> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Increments on every successful reload (1 after load).
    pub fn version(&self) -> u64 {
        *self.version.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Re-reads the file; on error the current version stays in service.
    pub fn reload(&self) -> Result<u64, FlowError> {
        let flow = load_flow_file(&self.path, self.catalog.as_ref())?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(flow);
        let mut v = self.version.write().unwrap_or_else(|e| e.into_inner());
        *v += 1;
        Ok(*v)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{CallInfo, Command, IvrSession};

    #[test]
    fn reload_swaps_for_new_calls_only_and_keeps_the_old_on_error() {
        let dir = std::env::temp_dir().join(format!("hotline-ivr-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("flow.toml");
        let v1 = "name = \"v1\"\nstart = \"a\"\n[[node]]\nname = \"a\"\ntype = \"hangup\"\n\
                  prompts = [\"msg/goodbye\"]\n";
        std::fs::write(&path, v1).unwrap();
        let handle = FlowHandle::load(&path, Some(PromptCatalog::default_zh_cn())).unwrap();
        let mut old_call = IvrSession::new(handle.current(), CallInfo::default());
        old_call.start(0);

        std::fs::write(
            &path,
            v1.replace("v1", "v2").replace("msg/goodbye", "msg/welcome"),
        )
        .unwrap();
        assert_eq!(handle.reload().unwrap(), 2);
        assert_eq!(handle.current().name(), "v2");
        // The call in progress still runs v1.
        assert_eq!(old_call.flow().name(), "v1");
        assert!(matches!(
            old_call.poll_command(),
            Some(Command::Play { prompts, .. }) if prompts == ["msg/goodbye"]
        ));

        std::fs::write(&path, v1.replace("msg/goodbye", "msg/missing")).unwrap();
        let err = handle.reload().unwrap_err();
        assert!(
            err.to_string().contains("missing prompt \"msg/missing\""),
            "{err}"
        );
        assert_eq!(handle.current().name(), "v2");
        assert_eq!(handle.version(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
