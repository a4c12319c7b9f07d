//! The plugin's Kubernetes I/O: connecting the way kubectl does, who am I,
//! reading requests, policies and Events, and writing one decision.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::{authentication::v1::SelfSubjectReview, core::v1::Event};
use kube::{
    Api, Client, Config,
    api::{ListParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};

use super::{
    cli::Global,
    error::{PluginError, Result, from_kube},
    format::EventLine,
    sanitize::inert,
};
use crate::crd::{ApprovalPolicy, ApprovalPolicySpec, ApprovalRequest, ApprovalRequestStatus};

/// A client, the namespace to work in and the cluster's address (for messages).
#[derive(Clone)]
pub struct Conn {
    pub client: Client,
    pub namespace: String,
    pub url: String,
}

/// The caller as the apiserver authenticates them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Me {
    pub user: String,
    pub groups: Vec<String>,
}

impl Conn {
    /// Connects with kubectl's rules: `--kubeconfig`, else `$KUBECONFIG`, else
    /// `~/.kube/config`; `--context`; `--as`/`--as-group`; the context's namespace.
    pub async fn connect(g: &Global) -> Result<Self> {
        let kubeconfig = match &g.kubeconfig {
            Some(path) => Kubeconfig::read_from(path),
            None => Kubeconfig::read(),
        }
        .map_err(|e| PluginError::Kubeconfig(e.to_string()))?;
        let options = KubeConfigOptions {
            context: g.context.clone(),
            ..KubeConfigOptions::default()
        };
        let mut config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| PluginError::Kubeconfig(e.to_string()))?;
        if let Some(user) = &g.as_user {
            config.auth_info.impersonate = Some(user.clone());
        }
        if !g.as_group.is_empty() {
            config.auth_info.impersonate_groups = Some(g.as_group.clone());
        }
        let namespace = g
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let url = config.cluster_url.to_string();
        let client = Client::try_from(config).map_err(|e| from_kube(e, &url))?;
        Ok(Self {
            client,
            namespace,
            url,
        })
    }

    pub fn kube(&self, err: kube::Error) -> PluginError {
        from_kube(err, &self.url)
    }

    pub fn requests(&self, namespace: Option<&str>) -> Api<ApprovalRequest> {
        match namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    /// Who the apiserver says we are (a SelfSubjectReview).
    pub async fn whoami(&self) -> Result<Me> {
        let review = Api::<SelfSubjectReview>::all(self.client.clone())
            .create(&PostParams::default(), &SelfSubjectReview::default())
            .await
            .map_err(|e| self.kube(e))?;
        let info = review.status.and_then(|s| s.user_info).unwrap_or_default();
        Ok(Me {
            user: info.username.unwrap_or_default(),
            groups: info.groups.unwrap_or_default(),
        })
    }

    /// One request, or a plain "not found".
    pub async fn request(&self, name: &str) -> Result<ApprovalRequest> {
        self.requests(Some(&self.namespace))
            .get_opt(name)
            .await
            .map_err(|e| self.kube(e))?
            .ok_or_else(|| PluginError::NotFound {
                name: name.to_owned(),
                namespace: self.namespace.clone(),
            })
    }

    /// Requests in the namespace (or all namespaces), optionally by requester.
    pub async fn list(
        &self,
        all_namespaces: bool,
        requester: Option<&str>,
    ) -> Result<Vec<ApprovalRequest>> {
        let api = self.requests((!all_namespaces).then_some(self.namespace.as_str()));
        let mut params = ListParams::default();
        if let Some(user) = requester {
            params = params.fields(&format!("spec.requester={user}"));
        }
        let mut items = api.list(&params).await.map_err(|e| self.kube(e))?.items;
        items.sort_by(|a, b| {
            let key = |r: &ApprovalRequest| {
                (
                    r.metadata.namespace.clone(),
                    r.metadata.creation_timestamp.clone().map(|t| t.0),
                    r.metadata.name.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        Ok(items)
    }

    /// Every policy by name; empty when policies cannot be read (then the
    /// views fall back to the recorded status).
    pub async fn policies(&self) -> BTreeMap<String, ApprovalPolicySpec> {
        let api = Api::<ApprovalPolicy>::all(self.client.clone());
        match api.list(&ListParams::default()).await {
            Ok(list) => list
                .items
                .into_iter()
                .filter_map(|p| Some((p.metadata.name?, p.spec)))
                .collect(),
            Err(e) => {
                tracing::debug!(error = %e, "cannot read ApprovalPolicies");
                BTreeMap::new()
            }
        }
    }

    /// One policy, if it exists and can be read.
    pub async fn policy(&self, name: &str) -> Option<ApprovalPolicySpec> {
        let api = Api::<ApprovalPolicy>::all(self.client.clone());
        api.get_opt(name).await.ok().flatten().map(|p| p.spec)
    }

    /// The Events about a request, oldest first. Best effort: without the
    /// right to read Events there are simply none to show.
    pub async fn events(&self, name: &str) -> Vec<EventLine> {
        let api = Api::<Event>::namespaced(self.client.clone(), &self.namespace);
        let params = ListParams::default().fields(&format!(
            "involvedObject.name={name},involvedObject.kind=ApprovalRequest"
        ));
        let Ok(list) = api.list(&params).await else {
            return Vec::new();
        };
        let mut lines: Vec<EventLine> = list.items.into_iter().map(event_line).collect();
        lines.sort_by_key(|e| e.time);
        lines
    }

    /// Writes one decision into the request's status, conditioned on the
    /// resourceVersion it was read at; on a conflict, reads again and retries once.
    pub async fn decide<F>(&self, name: &str, mut change: F) -> Result<ApprovalRequest>
    where
        F: FnMut(&ApprovalRequest, &mut ApprovalRequestStatus) -> Result<()>,
    {
        let api = self.requests(Some(&self.namespace));
        let mut tries = 0;
        loop {
            tries += 1;
            let mut req = self.request(name).await?;
            let mut status = req.status.clone().unwrap_or_default();
            change(&req, &mut status)?;
            req.status = Some(status);
            match api.replace_status(name, &PostParams::default(), &req).await {
                Ok(written) => return Ok(written),
                Err(kube::Error::Api(s)) if s.code == 409 && tries < 2 => continue,
                Err(e) => return Err(self.kube(e)),
            }
        }
    }
}

/// An Event for display. Its strings are made [`inert`]: anyone who may
/// create Events in the namespace, and the requester through the reasons the
/// Events quote, wrote them.
pub(super) fn event_line(e: Event) -> EventLine {
    let time: Option<Timestamp> = e
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref().map(|t| t.0))
        .or(e.last_timestamp.as_ref().map(|t| t.0))
        .or(e.event_time.as_ref().map(|t| t.0))
        .or(e.first_timestamp.as_ref().map(|t| t.0))
        .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let from = e
        .reporting_component
        .filter(|c| !c.is_empty())
        .or(e.source.and_then(|s| s.component))
        .unwrap_or_default();
    EventLine {
        time,
        kind: inert(e.type_.as_deref().unwrap_or_default()),
        reason: inert(e.reason.as_deref().unwrap_or_default()),
        from: inert(&from),
        message: inert(e.message.as_deref().unwrap_or_default()),
    }
}
