//! A minimal client of Kubernetes' CRI API (runtime.v1, gRPC over the
//! runtime's unix socket): what containerd and CRI-O know of a container
//! and its pod that their files do not say — above all the pod's labels.
//!
//! The messages carry only the fields mamori reads (protobuf skips the
//! rest), declared with prost's derive; field numbers are those of
//! cri-api's `api.proto`. Not generated from that file: generating needs
//! the file in the repository (Kubernetes' text, which this project does
//! not copy) or fetched at build time (builds must work offline once the
//! crates are fetched). The end-to-end test against a real containerd pod
//! checks the numbers.

use std::{collections::HashMap, path::Path, time::Duration};

use tonic::{
    client::Grpc,
    codegen::http::uri::PathAndQuery,
    transport::{Channel, Endpoint, Uri},
};

use super::runtime::{Metadata, Pod};

/// Where runtimes listen, under the host's root.
pub const DEFAULT_SOCKETS: &[&str] = &[
    "run/containerd/containerd.sock",
    "run/crio/crio.sock",
    "var/run/crio/crio.sock",
];

const TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("CRI socket {0}: {1}")]
    Connect(String, #[source] tonic::transport::Error),
    #[error("CRI {0}: {1}")]
    Call(&'static str, #[source] Box<tonic::Status>),
}

/// A connection to one runtime's CRI socket.
#[derive(Clone)]
pub struct Client {
    channel: Channel,
}

impl Client {
    pub async fn connect(socket: &Path) -> Result<Self, Error> {
        let path = socket.to_owned();
        let endpoint = Endpoint::from_static("http://cri.invalid")
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT);
        let channel = endpoint
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            }))
            .await
            .map_err(|e| Error::Connect(socket.display().to_string(), e))?;
        Ok(Self { channel })
    }

    /// One call of `runtime.v1.RuntimeService/<method>`.
    pub async fn call<Req, Resp>(&self, method: &'static str, req: Req) -> Result<Resp, Error>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let mut grpc = Grpc::new(self.channel.clone());
        grpc.ready().await.map_err(|e| {
            Error::Call(method, Box::new(tonic::Status::unavailable(e.to_string())))
        })?;
        let path = PathAndQuery::try_from(format!("/runtime.v1.RuntimeService/{method}"))
            .map_err(|e| Error::Call(method, Box::new(tonic::Status::internal(e.to_string()))))?;
        grpc.unary(
            tonic::Request::new(req),
            path,
            tonic_prost::ProstCodec::default(),
        )
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| Error::Call(method, Box::new(s)))
    }

    /// The container's status, and its sandbox's id when the runtime says.
    pub async fn container_status(
        &self,
        id: &str,
    ) -> Result<Option<(ContainerStatus, Option<String>)>, Error> {
        let r: ContainerStatusResponse = self
            .call(
                "ContainerStatus",
                ContainerStatusRequest {
                    container_id: id.to_owned(),
                    verbose: true,
                },
            )
            .await?;
        Ok(r.status.map(|s| (s, sandbox_id_from_info(&r.info))))
    }

    pub async fn pod_sandbox_status(&self, id: &str) -> Result<Option<PodSandboxStatus>, Error> {
        let r: PodSandboxStatusResponse = self
            .call(
                "PodSandboxStatus",
                PodSandboxStatusRequest {
                    pod_sandbox_id: id.to_owned(),
                    verbose: false,
                },
            )
            .await?;
        Ok(r.status)
    }
}

/// containerd's verbose `info` names the sandbox (`sandboxID`).
fn sandbox_id_from_info(info: &HashMap<String, String>) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    v["sandboxID"].as_str().map(str::to_owned)
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerStatusRequest {
    #[prost(string, tag = "1")]
    pub container_id: String,
    #[prost(bool, tag = "2")]
    pub verbose: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerStatusResponse {
    #[prost(message, optional, tag = "1")]
    pub status: Option<ContainerStatus>,
    #[prost(map = "string, string", tag = "2")]
    pub info: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerStatus {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<ContainerMetadata>,
    /// ns since the epoch.
    #[prost(int64, tag = "4")]
    pub created_at: i64,
    #[prost(message, optional, tag = "8")]
    pub image: Option<ImageSpec>,
    #[prost(string, tag = "9")]
    pub image_ref: String,
    #[prost(map = "string, string", tag = "12")]
    pub labels: HashMap<String, String>,
    #[prost(string, tag = "17")]
    pub image_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerMetadata {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(uint32, tag = "2")]
    pub attempt: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageSpec {
    #[prost(string, tag = "1")]
    pub image: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandboxStatusRequest {
    #[prost(string, tag = "1")]
    pub pod_sandbox_id: String,
    #[prost(bool, tag = "2")]
    pub verbose: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandboxStatusResponse {
    #[prost(message, optional, tag = "1")]
    pub status: Option<PodSandboxStatus>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandboxStatus {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<PodSandboxMetadata>,
    #[prost(map = "string, string", tag = "7")]
    pub labels: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandboxMetadata {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub uid: String,
    #[prost(string, tag = "3")]
    pub namespace: String,
    #[prost(uint32, tag = "4")]
    pub attempt: u32,
}

/// Adds what the runtime's CRI service knows to `m`: the container's name,
/// image and labels as Kubernetes created them, and its pod with the pod's
/// labels.
/// Returns whether the runtime knew the container.
pub async fn enrich(client: &Client, full_id: &str, m: &mut Metadata) -> Result<bool, Error> {
    let Some((c, sandbox_id)) = client.container_status(full_id).await? else {
        return Ok(false);
    };
    if let Some(md) = c.metadata.as_ref().filter(|md| !md.name.is_empty()) {
        m.name = md.name.clone();
    }
    // The annotation names the image as the pod spec did; the status may
    // only have its id.
    let image = c.image.as_ref().map_or("", |i| i.image.as_str());
    if (m.image.is_empty() || m.image.starts_with("sha256:")) && !image.is_empty() {
        m.image = image.to_owned();
    }
    if m.image_id.is_empty() {
        m.image_id = c.image_ref.clone();
    }
    if m.created_ns.is_none() && c.created_at > 0 {
        m.created_ns = Some(c.created_at as u64);
    }
    let label = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
    if m.labels.is_empty() {
        let mut labels: Vec<(String, String)> = c
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.sort();
        m.labels = labels;
    }
    let sandbox_id = sandbox_id
        .or_else(|| m.pod.as_ref().map(|p| p.sandbox_id.clone()))
        .unwrap_or_default();
    let sandbox = if sandbox_id.is_empty() {
        None
    } else {
        client.pod_sandbox_status(&sandbox_id).await?
    };
    let named = c.labels.contains_key("io.kubernetes.pod.name");
    if !named && sandbox.is_none() {
        return Ok(true);
    }
    let pod = m.pod.get_or_insert_with(Pod::default);
    pod.sandbox_id = sandbox_id;
    if named {
        pod.name = label("io.kubernetes.pod.name");
        pod.namespace = label("io.kubernetes.pod.namespace");
        pod.uid = label("io.kubernetes.pod.uid");
    }
    if let Some(s) = sandbox {
        if let Some(md) = s.metadata {
            pod.name = md.name;
            pod.namespace = md.namespace;
            pod.uid = md.uid;
        }
        let mut labels: Vec<(String, String)> = s
            .labels
            .into_iter()
            .filter(|(k, _)| !k.starts_with("io.kubernetes."))
            .collect();
        labels.sort();
        pod.labels = labels;
    }
    Ok(true)
}
