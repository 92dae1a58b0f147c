//! TEMPORARY until the receiver lands from branch sms-senders.
pub struct SmsInbox;
impl SmsInbox {
    pub async fn start(_secret: &str) -> Self {
        Self
    }
    pub fn url(&self) -> String {
        "http://127.0.0.1:9/".into()
    }
    pub async fn code_for(&self, _mobile: &str) -> Option<String> {
        None
    }
}
impl SmsInbox {
    pub fn fail(&self, _on: bool) {}
    pub fn calls(&self) -> usize {
        0
    }
}
