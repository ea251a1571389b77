//! The endpoint's pages: small, Russian, self-contained (inline CSS, no scripts, no external
//! resources), every value escaped.

use rassylka::UnsubscribePage;
use rassylka::template::OutputFormat;

const STYLE: &str = "body{font-family:Arial,Helvetica,sans-serif;background:#f4f4f4;color:#222;margin:0}\
main{max-width:480px;margin:48px auto;background:#fff;padding:32px;border-radius:8px}\
h1{font-size:22px;margin:0 0 16px}p{font-size:16px;line-height:1.5}\
button{font-size:16px;padding:10px 20px;border:0;border-radius:4px;background:#c62828;color:#fff;cursor:pointer}";

fn page_html(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"ru\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>{title}</title><style>{STYLE}</style></head>\
         <body><main><h1>{title}</h1>{body}</main></body></html>\n",
        title = OutputFormat::Html.escape(title),
    )
}

fn whose(masked_address: Option<&str>) -> String {
    match masked_address {
        Some(address) => format!("Адрес <b>{}</b>", OutputFormat::Html.escape(address)),
        None => "Ваш адрес".to_owned(),
    }
}

/// The page a link opens: it names the masked address and asks to confirm with one button.
/// The form posts back to the same address, so the page needs no other URL.
pub(crate) fn confirm(page: &UnsubscribePage) -> String {
    if page.unsubscribed {
        return done_already(page);
    }
    let body = format!(
        "<p>{} больше не будет получать рекламные рассылки.</p>\
         <form method=\"post\"><input type=\"hidden\" name=\"confirm\" value=\"1\">\
         <button type=\"submit\">Отписаться</button></form>",
        whose(page.masked_address.as_deref())
    );
    page_html("Отписка от рассылки", &body)
}

fn done_already(page: &UnsubscribePage) -> String {
    let body = format!(
        "<p>{} уже удалён из рассылки. Больше ничего делать не нужно.</p>",
        whose(page.masked_address.as_deref())
    );
    page_html("Ваш адрес удалён из рассылки", &body)
}

/// After the POST.
pub(crate) fn done(masked_address: Option<&str>) -> String {
    let body = format!(
        "<p>{} удалён из рассылки: рекламных писем больше не будет.</p>",
        whose(masked_address)
    );
    page_html("Ваш адрес удалён из рассылки", &body)
}

/// A token that is not ours, altered or cut short.
pub(crate) fn bad_link() -> String {
    page_html(
        "Ссылка недействительна",
        "<p>Эта ссылка для отписки повреждена или устарела. Откройте ссылку из последнего письма целиком.</p>",
    )
}

/// The journal is unavailable: try again later.
pub(crate) fn unavailable() -> String {
    page_html(
        "Сервис временно недоступен",
        "<p>Не удалось выполнить запрос. Попробуйте ещё раз через несколько минут.</p>",
    )
}
